/*
 * codec.c: the one generic msgpack encoder and decoder of pkg/proto. Both
 * walk the field tables of schema.c, so no message has hand-written
 * packing code. Wire form (docs/protocol.md):
 *     { "v": 1, "t": "<type name>", "id": <u64>, "b": { body } }
 *
 * Encoding writes every required field, and an optional field only when it
 * is not its zero value (0, false, nil string, empty array, NULL pointer);
 * a decoder fills absent optional fields with that zero value, so the
 * round trip is exact. The encoder enforces the same limits as the
 * decoder, so whatever encodes also decodes.
 *
 * Decoding first runs proto_scan() over the bytes (no allocation), then
 * msgpack_unpack_next() on the caller's buffer: msgpack-c makes STR/BIN
 * objects point into that buffer, so decoded proto_str values are views of
 * the input, not copies. Arrays are calloc'd and freed by
 * proto_msg_release().
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "base/base.h"
#include "proto/proto.h"

#define AT_(base, off, T) ((T *)(void *)((char *)(base) + (off)))
#define CAT_(base, off, T)                                                    \
	((const T *)(const void *)((const char *)(base) + (off)))

/* Encoder ------------------------------------------------------------------
 */

/*
 * Output buffer: grows by copying into a fresh block and wiping the old one,
 * because messages may carry passwords; refuses to pass PROTO_MAX_MSG.
 */
struct enc {
	char *data;
	size_t len;
	size_t cap;
	int err; /* first error seen by enc_write */
};

static int
enc_write(void *arg, const char *p, size_t n)
{
	struct enc *e = arg;
	size_t ncap;
	char *nd;

	if (n > PROTO_MAX_MSG || e->len + n > PROTO_MAX_MSG) {
		e->err = ERR_TOOBIG;
		return (-1);
	}
	if (e->len + n > e->cap) {
		ncap = e->cap == 0 ? 256 : e->cap;
		while (ncap < e->len + n) {
			ncap *= 2;
		}
		if (ncap > PROTO_MAX_MSG) {
			ncap = PROTO_MAX_MSG;
		}
		nd = malloc(ncap);
		if (nd == NULL) {
			e->err = ERR_NOMEM;
			return (-1);
		}
		if (e->data != NULL) {
			memcpy(nd, e->data, e->len);
			mem_wipe(e->data, e->cap);
			free(e->data);
		}
		e->data = nd;
		e->cap = ncap;
	}
	memcpy(e->data + e->len, p, n);
	e->len += n;
	return (0);
}

static uint64_t
field_umax(const struct proto_field *f)
{
	if (f->max != 0) {
		return (f->max);
	}
	switch (f->type) {
	case PROTO_F_U8:
		return (UINT8_MAX);
	case PROTO_F_U32:
		return (UINT32_MAX);
	case PROTO_F_STR:
		return (PROTO_MAX_STR);
	case PROTO_F_STR_ARRAY:
	case PROTO_F_STRUCT_ARRAY:
		return (PROTO_MAX_ROWS);
	default:
		return (UINT64_MAX);
	}
}

/* True when the field holds its zero value (and may be omitted). */
static bool
field_is_zero(const struct proto_field *f, const void *st)
{
	switch (f->type) {
	case PROTO_F_U8:
		return (*CAT_(st, f->off, uint8_t) == 0);
	case PROTO_F_U32:
		return (*CAT_(st, f->off, uint32_t) == 0);
	case PROTO_F_U64:
		return (*CAT_(st, f->off, uint64_t) == 0);
	case PROTO_F_I32:
		return (*CAT_(st, f->off, int32_t) == 0);
	case PROTO_F_I64:
		return (*CAT_(st, f->off, int64_t) == 0);
	case PROTO_F_BOOL:
		return (!*CAT_(st, f->off, bool));
	case PROTO_F_STR:
		return (CAT_(st, f->off, struct proto_str)->p == NULL);
	case PROTO_F_STR_ARRAY:
	case PROTO_F_STRUCT_ARRAY:
		return (*CAT_(st, f->count_off, size_t) == 0);
	case PROTO_F_STRUCT_PTR:
		return (*CAT_(st, f->off, void *const) == NULL);
	}
	return (true);
}

static int enc_table(msgpack_packer *pk, const struct proto_table *t,
    const void *st, int depth);

static int
enc_str(msgpack_packer *pk, struct proto_str s, uint64_t max)
{
	if (s.p == NULL || s.len > max) {
		return (ERR_INVAL);
	}
	if (msgpack_pack_str(pk, s.len) != 0
	    || msgpack_pack_str_body(pk, s.p, s.len) != 0) {
		return (ERR_IO);
	}
	return (0);
}

static int
enc_field(
    msgpack_packer *pk, const struct proto_field *f, const void *st, int depth)
{
	uint64_t max = field_umax(f);
	const void *arr;
	size_t n, i;
	int rv = 0;

	switch (f->type) {
	case PROTO_F_U8:
		if (*CAT_(st, f->off, uint8_t) > max) {
			return (ERR_INVAL);
		}
		rv = msgpack_pack_uint8(pk, *CAT_(st, f->off, uint8_t));
		break;
	case PROTO_F_U32:
		if (*CAT_(st, f->off, uint32_t) > max) {
			return (ERR_INVAL);
		}
		rv = msgpack_pack_uint32(pk, *CAT_(st, f->off, uint32_t));
		break;
	case PROTO_F_U64:
		if (*CAT_(st, f->off, uint64_t) > max) {
			return (ERR_INVAL);
		}
		rv = msgpack_pack_uint64(pk, *CAT_(st, f->off, uint64_t));
		break;
	case PROTO_F_I32:
		rv = msgpack_pack_int32(pk, *CAT_(st, f->off, int32_t));
		break;
	case PROTO_F_I64:
		rv = msgpack_pack_int64(pk, *CAT_(st, f->off, int64_t));
		break;
	case PROTO_F_BOOL:
		rv = *CAT_(st, f->off, bool) ? msgpack_pack_true(pk)
		                             : msgpack_pack_false(pk);
		break;
	case PROTO_F_STR:
		return (enc_str(pk, *CAT_(st, f->off, struct proto_str), max));
	case PROTO_F_STR_ARRAY:
	case PROTO_F_STRUCT_ARRAY:
		n = *CAT_(st, f->count_off, size_t);
		arr = *CAT_(st, f->off, void *const);
		if (n > max || (n > 0 && arr == NULL)) {
			return (ERR_INVAL);
		}
		if (msgpack_pack_array(pk, n) != 0) {
			return (ERR_IO);
		}
		for (i = 0; i < n && rv == 0; i++) {
			if (f->type == PROTO_F_STR_ARRAY) {
				rv = enc_str(pk,
				    ((const struct proto_str *)arr)[i],
				    PROTO_MAX_STR);
			} else {
				rv = enc_table(pk, f->sub,
				    (const char *)arr + i * f->sub->size,
				    depth + 1);
			}
		}
		return (rv);
	case PROTO_F_STRUCT_PTR:
		arr = *CAT_(st, f->off, void *const);
		if (arr == NULL) {
			return (ERR_INVAL);
		}
		return (enc_table(pk, f->sub, arr, depth + 1));
	}
	return (rv != 0 ? ERR_IO : 0);
}

static int
enc_table(
    msgpack_packer *pk, const struct proto_table *t, const void *st, int depth)
{
	size_t i, n = 0;
	int rv;

	if (depth > PROTO_MAX_DEPTH) {
		return (ERR_INVAL);
	}
	for (i = 0; i < t->nfields; i++) {
		if (t->fields[i].required
		    || !field_is_zero(&t->fields[i], st)) {
			n++;
		}
	}
	if (msgpack_pack_map(pk, n) != 0) {
		return (ERR_IO);
	}
	for (i = 0; i < t->nfields; i++) {
		const struct proto_field *f = &t->fields[i];

		if (!f->required && field_is_zero(f, st)) {
			continue;
		}
		rv = enc_str(pk, proto_str_c(f->key), PROTO_MAX_STR);
		if (rv != 0) {
			return (rv);
		}
		rv = enc_field(pk, f, st, depth);
		if (rv != 0) {
			return (rv);
		}
	}
	return (0);
}

int
proto_encode(const struct proto_msg *m, char **out_r, size_t *len_r)
{
	const struct proto_table *t;
	struct enc e = { NULL, 0, 0, 0 };
	msgpack_packer pk;
	int rv;

	*out_r = NULL;
	*len_r = 0;
	t = proto_body_table(m->type);
	if (t == NULL) {
		return (ERR_INVAL);
	}
	msgpack_packer_init(&pk, &e, enc_write);
	rv = ERR_IO;
	if (msgpack_pack_map(&pk, 4) != 0
	    || enc_str(&pk, proto_str_c("v"), 1) != 0
	    || msgpack_pack_uint32(&pk, PROTO_VERSION) != 0
	    || enc_str(&pk, proto_str_c("t"), 1) != 0
	    || enc_str(
	           &pk, proto_str_c(proto_msg_name(m->type)), PROTO_MAX_STR)
	        != 0
	    || enc_str(&pk, proto_str_c("id"), 2) != 0
	    || msgpack_pack_uint64(&pk, m->id) != 0
	    || enc_str(&pk, proto_str_c("b"), 1) != 0) {
		goto fail;
	}
	rv = enc_table(&pk, t, &m->u, 2);
	if (rv != 0) {
		goto fail;
	}
	*out_r = e.data;
	*len_r = e.len;
	return (0);
fail:
	if (e.err != 0) {
		rv = e.err; /* the writer's ERR_TOOBIG/ERR_NOMEM wins */
	}
	if (e.data != NULL) {
		mem_wipe(e.data, e.cap);
		free(e.data);
	}
	return (rv);
}

/* Release ------------------------------------------------------------------
 */

static void
release_table(const struct proto_table *t, void *st)
{
	size_t i, j, n;
	void **pp;

	for (i = 0; i < t->nfields; i++) {
		const struct proto_field *f = &t->fields[i];

		switch (f->type) {
		case PROTO_F_STR_ARRAY:
		case PROTO_F_STRUCT_ARRAY:
			pp = AT_(st, f->off, void *);
			n = *AT_(st, f->count_off, size_t);
			if (f->type == PROTO_F_STRUCT_ARRAY && *pp != NULL) {
				for (j = 0; j < n; j++) {
					release_table(f->sub,
					    (char *)*pp + j * f->sub->size);
				}
			}
			free(*pp);
			*pp = NULL;
			*AT_(st, f->count_off, size_t) = 0;
			break;
		case PROTO_F_STRUCT_PTR:
			pp = AT_(st, f->off, void *);
			if (*pp != NULL) {
				release_table(f->sub, *pp);
				free(*pp);
				*pp = NULL;
			}
			break;
		default:
			break;
		}
	}
}

void
proto_msg_release(struct proto_msg *m)
{
	const struct proto_table *t;

	if (m == NULL) {
		return;
	}
	t = proto_body_table(m->type);
	if (t != NULL) {
		release_table(t, &m->u);
	}
	memset(m, 0, sizeof(*m));
	m->type = MSG_NONE;
}

/* Decoder ------------------------------------------------------------------
 */

/* The decoder's position ("b.messages[3].uid") is kept as a stack of
 * segments pointing into the message and rendered only for an error:
 * formatting it eagerly cost 7% of the store's time on a header sync. */
#define DEC_DEPTH 16

struct dec_seg {
	const char *key; /* NULL: an array index */
	size_t n;        /* key length, or the index */
};

struct dec {
	const char *root;             /* "message", "v", "t", "id", "b" */
	struct dec_seg seg[DEC_DEPTH];
	size_t depth;                 /* may exceed DEC_DEPTH (not stored) */
	char *err;
	size_t errlen;
};

static int dec_fail(struct dec *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
dec_fail(struct dec *d, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	char path[256];
	size_t i, len;
	int w;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	len = (size_t)snprintf(path, sizeof(path), "%s", d->root);
	for (i = 0; i < d->depth && len < sizeof(path); i++) {
		if (i == DEC_DEPTH) {
			w = snprintf(path + len, sizeof(path) - len, "...");
		} else if (d->seg[i].key != NULL) {
			w = snprintf(path + len, sizeof(path) - len, ".%.*s",
			    (int)(d->seg[i].n > 64 ? 64 : d->seg[i].n),
			    d->seg[i].key);
		} else {
			w = snprintf(path + len, sizeof(path) - len, "[%zu]",
			    d->seg[i].n);
		}
		if (w < 0 || i == DEC_DEPTH) {
			break;
		}
		len += (size_t)w;
	}
	snprintf(d->err, d->errlen, "%s: %s", path, msg);
	return (ERR_PROTO);
}

/* Pushes ".key" (key != NULL) or "[n]" onto the path; returns the depth
 * to restore with path_pop(). */
static size_t
path_push(struct dec *d, const char *key, size_t n)
{
	size_t save = d->depth;

	if (d->depth < DEC_DEPTH) {
		d->seg[d->depth].key = key;
		d->seg[d->depth].n = n;
	}
	d->depth++;
	return (save);
}

static size_t
path_key(struct dec *d, const char *p, size_t n)
{
	return (path_push(d, p, n));
}

static size_t
path_index(struct dec *d, size_t i)
{
	return (path_push(d, NULL, i));
}

static void
path_pop(struct dec *d, size_t save)
{
	d->depth = save;
}

static int dec_table(struct dec *d, const struct proto_table *t, void *st,
    const msgpack_object *o);

static int
dec_str(
    struct dec *d, const msgpack_object *o, uint64_t max, struct proto_str *s)
{
	if (o->type == MSGPACK_OBJECT_STR) {
		s->p = o->via.str.ptr;
		s->len = o->via.str.size;
	} else if (o->type == MSGPACK_OBJECT_BIN) {
		s->p = o->via.bin.ptr;
		s->len = o->via.bin.size;
	} else {
		return (dec_fail(d, "expected string"));
	}
	if (s->len > max) {
		s->p = NULL;
		s->len = 0;
		return (dec_fail(d, "string of %u bytes exceeds limit %llu",
		    o->via.str.size, (unsigned long long)max));
	}
	if (s->p == NULL) {
		s->p = ""; /* msgpack-c may give NULL for an empty string */
	}
	return (0);
}

static int
dec_uint(struct dec *d, const msgpack_object *o, uint64_t max, uint64_t *v_r)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max) {
		return (dec_fail(d, "expected unsigned integer <= %llu",
		    (unsigned long long)max));
	}
	*v_r = o->via.u64;
	return (0);
}

static int
dec_int(struct dec *d, const msgpack_object *o, int64_t min, int64_t max,
    int64_t *v_r)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER
	    && o->via.u64 <= (uint64_t)max) {
		*v_r = (int64_t)o->via.u64;
		return (0);
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= min) {
		*v_r = o->via.i64;
		return (0);
	}
	return (dec_fail(d, "expected integer in [%lld, %lld]", (long long)min,
	    (long long)max));
}

static int
dec_array(struct dec *d, const struct proto_field *f, void *st,
    const msgpack_object *o)
{
	uint64_t max = field_umax(f);
	size_t esize, i, save;
	void *arr;
	int rv;

	if (o->type != MSGPACK_OBJECT_ARRAY) {
		return (dec_fail(d, "expected array"));
	}
	if (o->via.array.size > max) {
		return (dec_fail(d, "array of %u elements exceeds limit %llu",
		    o->via.array.size, (unsigned long long)max));
	}
	if (o->via.array.size == 0) {
		return (0);
	}
	esize = f->type == PROTO_F_STR_ARRAY ? sizeof(struct proto_str)
	                                     : f->sub->size;
	arr = calloc(o->via.array.size, esize);
	if (arr == NULL) {
		return (ERR_NOMEM);
	}
	*AT_(st, f->off, void *) = arr;
	*AT_(st, f->count_off, size_t) = o->via.array.size;
	for (i = 0; i < o->via.array.size; i++) {
		save = path_index(d, i);
		if (f->type == PROTO_F_STR_ARRAY) {
			rv = dec_str(d, &o->via.array.ptr[i], PROTO_MAX_STR,
			    (struct proto_str *)arr + i);
		} else {
			rv = dec_table(d, f->sub, (char *)arr + i * esize,
			    &o->via.array.ptr[i]);
		}
		path_pop(d, save);
		if (rv != 0) {
			return (rv);
		}
	}
	return (0);
}

static int
dec_field(struct dec *d, const struct proto_field *f, void *st,
    const msgpack_object *o)
{
	uint64_t u = 0;
	int64_t i = 0;
	void *sub;
	int rv;

	if (o->type == MSGPACK_OBJECT_NIL && !f->required) {
		return (0); /* nil == absent for optional fields */
	}
	switch (f->type) {
	case PROTO_F_U8:
		rv = dec_uint(d, o, field_umax(f), &u);
		*AT_(st, f->off, uint8_t) = (uint8_t)u;
		return (rv);
	case PROTO_F_U32:
		rv = dec_uint(d, o, field_umax(f), &u);
		*AT_(st, f->off, uint32_t) = (uint32_t)u;
		return (rv);
	case PROTO_F_U64:
		rv = dec_uint(d, o, field_umax(f), &u);
		*AT_(st, f->off, uint64_t) = u;
		return (rv);
	case PROTO_F_I32:
		rv = dec_int(d, o, INT32_MIN, INT32_MAX, &i);
		*AT_(st, f->off, int32_t) = (int32_t)i;
		return (rv);
	case PROTO_F_I64:
		rv = dec_int(d, o, INT64_MIN, INT64_MAX, &i);
		*AT_(st, f->off, int64_t) = i;
		return (rv);
	case PROTO_F_BOOL:
		if (o->type != MSGPACK_OBJECT_BOOLEAN) {
			return (dec_fail(d, "expected boolean"));
		}
		*AT_(st, f->off, bool) = o->via.boolean;
		return (0);
	case PROTO_F_STR:
		return (dec_str(
		    d, o, field_umax(f), AT_(st, f->off, struct proto_str)));
	case PROTO_F_STR_ARRAY:
	case PROTO_F_STRUCT_ARRAY:
		return (dec_array(d, f, st, o));
	case PROTO_F_STRUCT_PTR:
		if (o->type != MSGPACK_OBJECT_MAP) {
			return (dec_fail(d, "expected map"));
		}
		sub = calloc(1, f->sub->size);
		if (sub == NULL) {
			return (ERR_NOMEM);
		}
		*AT_(st, f->off, void *) = sub;
		return (dec_table(d, f->sub, sub, o));
	}
	return (dec_fail(d, "unsupported field type"));
}

/* o == NULL decodes an absent body (an empty map). */
static int
dec_table(struct dec *d, const struct proto_table *t, void *st,
    const msgpack_object *o)
{
	uint32_t seen = 0, nkv = 0, k;
	const msgpack_object_kv *kv = NULL;
	size_t i, j, save, next = 0;
	int rv;

	if (o != NULL && o->type != MSGPACK_OBJECT_MAP) {
		return (dec_fail(d, "expected map"));
	}
	if (o != NULL) {
		kv = o->via.map.ptr;
		nkv = o->via.map.size;
	}
	for (k = 0; k < nkv; k++) {
		const msgpack_object *key = &kv[k].key;

		if (key->type != MSGPACK_OBJECT_STR) {
			return (dec_fail(d, "key %u: expected string key", k));
		}
		/* Encoders write the table's order: try the field after the
		 * last match first, so a known key costs one comparison. */
		for (j = 0, i = next; j < t->nfields; j++, i++) {
			if (i == t->nfields) {
				i = 0;
			}
			if (strlen(t->fields[i].key) == key->via.str.size
			    && memcmp(t->fields[i].key, key->via.str.ptr,
			           key->via.str.size)
			        == 0) {
				break;
			}
		}
		if (j == t->nfields) {
			continue; /* unknown keys are ignored */
		}
		next = i + 1;
		save = path_key(d, key->via.str.ptr, key->via.str.size);
		if ((seen & (1u << i)) != 0) {
			rv = dec_fail(d, "duplicate key");
		} else {
			seen |= 1u << i;
			rv = dec_field(d, &t->fields[i], st, &kv[k].val);
		}
		path_pop(d, save);
		if (rv != 0) {
			return (rv);
		}
	}
	for (i = 0; i < t->nfields; i++) {
		if (t->fields[i].required && (seen & (1u << i)) == 0) {
			save = path_key(
			    d, t->fields[i].key, strlen(t->fields[i].key));
			rv = dec_fail(d, "missing required key");
			path_pop(d, save);
			return (rv);
		}
	}
	return (0);
}

/* Copies a peer-supplied name into dst for an error message: printable
 * ASCII only, at most 64 bytes. */
static void
safe_name(char *dst, size_t n, const char *p, size_t len)
{
	size_t i, j = 0;

	for (i = 0; i < len && i < 64 && j + 1 < n; i++) {
		dst[j++] = (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"') ? p[i]
		                                                        : '?';
	}
	dst[j] = '\0';
}

/* Validates the envelope of root and decodes the body into m. */
static int
dec_envelope(struct dec *d, const msgpack_object *root, struct proto_msg *m)
{
	const msgpack_object *v = NULL, *t = NULL, *id = NULL, *b = NULL;
	const msgpack_object **slot;
	const msgpack_object_kv *kv;
	char name[80];
	uint32_t k;
	int rv;

	if (root->type != MSGPACK_OBJECT_MAP) {
		return (dec_fail(d, "expected map at top level"));
	}
	for (k = 0; k < root->via.map.size; k++) {
		kv = &root->via.map.ptr[k];
		if (kv->key.type != MSGPACK_OBJECT_STR) {
			return (dec_fail(d, "key %u: expected string key", k));
		}
		if (kv->key.via.str.size != 1 && kv->key.via.str.size != 2) {
			continue;
		}
		if (kv->key.via.str.size == 2) {
			slot = memcmp(kv->key.via.str.ptr, "id", 2) == 0
			    ? &id
			    : NULL;
		} else if (kv->key.via.str.ptr[0] == 'v') {
			slot = &v;
		} else if (kv->key.via.str.ptr[0] == 't') {
			slot = &t;
		} else if (kv->key.via.str.ptr[0] == 'b') {
			slot = &b;
		} else {
			slot = NULL;
		}
		if (slot == NULL) {
			continue;
		}
		if (*slot != NULL) {
			safe_name(name, sizeof(name), kv->key.via.str.ptr,
			    kv->key.via.str.size);
			return (dec_fail(d, "duplicate key \"%s\"", name));
		}
		*slot = &kv->val;
	}
	if (v == NULL) {
		return (dec_fail(d, "missing required key \"v\""));
	}
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 == 0) {
		d->root = "v";
		return (dec_fail(d, "expected unsigned integer >= 1"));
	}
	if (v->via.u64 > PROTO_VERSION) {
		snprintf(d->err, d->errlen,
		    "v: version %llu is newer than supported version %d",
		    (unsigned long long)v->via.u64, PROTO_VERSION);
		return (ERR_VERSION);
	}
	if (t == NULL) {
		return (dec_fail(d, "missing required key \"t\""));
	}
	if (t->type != MSGPACK_OBJECT_STR) {
		d->root = "t";
		return (dec_fail(d, "expected string"));
	}
	m->type = proto_msg_lookup(t->via.str.ptr, t->via.str.size);
	if (m->type == MSG_NONE) {
		safe_name(name, sizeof(name), t->via.str.ptr, t->via.str.size);
		d->root = "t";
		return (dec_fail(d, "unknown message type \"%s\"", name));
	}
	if (id == NULL) {
		return (dec_fail(d, "missing required key \"id\""));
	}
	if (id->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		d->root = "id";
		return (dec_fail(d, "expected unsigned integer <= %llu",
		    (unsigned long long)UINT64_MAX));
	}
	m->id = id->via.u64;
	d->root = "b";
	if (b != NULL && b->type == MSGPACK_OBJECT_NIL) {
		b = NULL;
	}
	rv = dec_table(d, proto_body_table(m->type), &m->u, b);
	return (rv);
}

int
proto_decode(const char *buf, size_t len, struct proto_msg *m, char *errbuf,
    size_t errlen)
{
	msgpack_unpacked u;
	struct dec d;
	char local[8];
	size_t off = 0;
	enum proto_msg_type type;
	uint64_t id;
	int rv;

	memset(m, 0, sizeof(*m));
	if (errbuf == NULL || errlen == 0) {
		errbuf = local;
		errlen = sizeof(local);
	}
	errbuf[0] = '\0';
	memset(&d, 0, sizeof(d));
	d.root = "message";
	d.err = errbuf;
	d.errlen = errlen;
	if (len > PROTO_MAX_MSG) {
		snprintf(errbuf, errlen, "message: %zu bytes exceeds limit %u",
		    len, PROTO_MAX_MSG);
		return (ERR_TOOBIG);
	}
	rv = proto_scan(buf, len, errbuf, errlen);
	if (rv != 0) {
		return (rv);
	}
	msgpack_unpacked_init(&u);
	switch (msgpack_unpack_next(&u, buf, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		rv = ERR_NOMEM;
		goto fail;
	default:
		rv = dec_fail(&d, "malformed msgpack");
		goto fail;
	}
	if (off != len) {
		rv = dec_fail(
		    &d, "%zu trailing bytes after the message", len - off);
		goto fail;
	}
	rv = dec_envelope(&d, &u.data, m);
	if (rv != 0) {
		goto fail;
	}
	msgpack_unpacked_destroy(&u);
	return (0);
fail:
	msgpack_unpacked_destroy(&u);
	/* Keep type and id (useful for an error reply), drop the body. */
	type = m->type;
	id = m->id;
	proto_msg_release(m);
	m->type = type;
	m->id = id;
	return (rv);
}
