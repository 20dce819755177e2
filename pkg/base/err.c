/*
 * err.c: names and texts of the project's error codes, generated from the
 * ERR_TABLE X-macro in base.h so the three can never drift apart.
 */
#include <errno.h>

#include "base.h"

const char *
err_str(int e)
{
	switch (e) {
#define ERR_STR_(name, value, text)                                         \
	case value:                                                         \
		return (text);
		ERR_TABLE(ERR_STR_)
#undef ERR_STR_
	}
	return ("unknown error");
}

const char *
err_name(int e)
{
	switch (e) {
#define ERR_NAME_(name, value, text)                                        \
	case value:                                                         \
		return (#name);
		ERR_TABLE(ERR_NAME_)
#undef ERR_NAME_
	}
	return ("ERR_UNKNOWN");
}

int
err_from_errno(int e)
{
	switch (e) {
	case 0:
		return (ERR_OK);
	case ENOMEM:
		return (ERR_NOMEM);
	case EINVAL:
		return (ERR_INVAL);
	case ETIMEDOUT:
	case EAGAIN:
		return (ERR_TIMEOUT);
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ENETUNREACH:
		return (ERR_UNREACHABLE);
	case EPIPE:
	case ECONNRESET:
		return (ERR_CLOSED);
	case ENOENT:
		return (ERR_NOTFOUND);
	case EEXIST:
		return (ERR_EXISTS);
	case E2BIG:
	case EMSGSIZE:
		return (ERR_TOOBIG);
	default:
		return (ERR_IO);
	}
}
