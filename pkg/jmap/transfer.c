/*
 * transfer.c: blobs (upload, streamed download), on the request
 * machinery of client.c (client_int.h). The EventSource stream is in
 * es.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap/client_int.h"

/* Blobs ------------------------------------------------------------------- */

int
jmap_upload(struct jmap_client *cl, const char *data, size_t len,
    const char *type, char **blob_id_r, struct jmap_err *e)
{
	const char *names[] = { "accountId" };
	const char *values[] = { cl->s.account_id };
	char shown[JMAP_URL_SHOWN + 8];
	const char *blob;
	json_t *root = NULL;
	char *url = NULL;
	int rv;

	*blob_id_r = NULL;
	memset(e, 0, sizeof(*e));
	if (type == NULL || type[0] == '\0' || strlen(type) > 200
	    || strpbrk(type, "\r\n") != NULL) {
		return (jmap_err_set(e, ERR_INVAL, RETRY_NEVER,
		    "JMAP upload: bad content type"));
	}
	if (len > cl->s.max_size_upload) {
		return (jmap_err_set(e, ERR_TOOBIG, RETRY_NEVER,
		    "JMAP upload of %zu bytes, the server takes %llu at most",
		    len, (unsigned long long)cl->s.max_size_upload));
	}
	rv = jmap_url_expand(cl->s.upload_url, names, values, 1, &url);
	if (rv != 0) {
		return (jmap_err_set(e, rv == ERR_NOMEM ? rv : ERR_PROTO,
		    RETRY_LATER, "JMAP: uploadUrl cannot be expanded: %s",
		    err_str(rv)));
	}
	rv = jmap_post_json(cl, url, type, data, len, &root, e);
	if (rv == 0) {
		blob = json_string_value(json_object_get(root, "blobId"));
		if (blob == NULL || blob[0] == '\0') {
			jmap_url_shown(url, shown, sizeof(shown));
			rv = jmap_err_set(e, ERR_PROTO, RETRY_LATER,
			    "upload answer from %s has no blobId", shown);
		} else if ((*blob_id_r = xstrdup(blob)) == NULL) {
			rv = jmap_err_set(
			    e, ERR_NOMEM, RETRY_LATER, "out of memory");
		}
	}
	json_decref(root);
	free(url);
	return (rv);
}

int
jmap_download(struct jmap_client *cl, const char *blob_id, uint64_t max,
    jmap_chunk_fn fn, void *arg, uint64_t *total_r, struct jmap_err *e)
{
	/* The type and name only shape the server's Content-Type and
	 * Content-Disposition: the bytes are the same. */
	const char *names[] = { "accountId", "blobId", "name", "type" };
	const char *values[] = { cl->s.account_id, blob_id, "blob",
		"application/octet-stream" };
	struct xfer x;
	char *url = NULL;
	CURLcode cc;
	int rv;

	if (total_r != NULL) {
		*total_r = 0;
	}
	memset(e, 0, sizeof(*e));
	rv = jmap_url_expand(cl->s.download_url, names, values, 4, &url);
	if (rv != 0) {
		return (jmap_err_set(e, rv == ERR_NOMEM ? rv : ERR_PROTO,
		    RETRY_LATER, "JMAP: downloadUrl cannot be expanded: %s",
		    err_str(rv)));
	}
	jmap_xfer_init(&x, cl, XFER_STREAM);
	x.max = max;
	x.fn = fn;
	x.arg = arg;
	cc = jmap_http_setup(cl, url, &x);
	rv = cc != CURLE_OK ? jmap_option_failed(cc, e)
	                    : jmap_http_perform(cl, url, &x, e);
	if (total_r != NULL) {
		*total_r = x.total;
	}
	buf_release(&x.body);
	free(url);
	return (rv);
}
