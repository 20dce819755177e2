/*
 * date.c: RFC 5322 date-times (Date: headers, IMAP ENVELOPE dates) and
 * IMAP INTERNALDATE strings to unix seconds.
 *
 * The RFC 5322 parser accepts the obsolete syntax of section 4.3 that is
 * still on the wire: an optional day-of-week (with or without comma),
 * 2- and 3-digit years, missing seconds, CFWS anywhere (comments are
 * dropped, nested ones included), and zone names (UT, GMT, the US zones,
 * single military letters, which RFC 5322 says to read as +0000). The
 * value is tokenised first (numbers, words, and the punctuation , : + -),
 * then matched against the grammar, so spacing does not matter. Fields
 * out of range (month 13, day 31 in April, hour 25, zone +2500) are
 * rejected. The conversion to seconds uses days_from_civil(), never the
 * local time zone.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "mime/mime.h"

/* A date is short; anything longer is not one. */
#define DATE_MAX_LEN 256
#define DATE_MAX_TOKENS 24

enum date_tok_kind { DATE_NUM, DATE_WORD, DATE_PUNCT };

struct date_tok {
	enum date_tok_kind kind;
	const char *s;
	size_t len;
	int64_t num; /* DATE_NUM */
};

struct date_toks {
	struct date_tok t[DATE_MAX_TOKENS];
	size_t n;
	size_t pos;
};

/* The broken-down date-time the parsers fill. */
struct date_fields {
	int64_t year;
	int month; /* 1..12 */
	int day;
	int hour;
	int min;
	int sec;
	int zone_s; /* offset east of UTC, seconds */
};

static const char *const date_months[12] = { "jan", "feb", "mar", "apr",
	"may", "jun", "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const date_months_long[12] = { "january", "february",
	"march", "april", "may", "june", "july", "august", "september",
	"october", "november", "december" };
static const char *const date_wdays[7] = { "mon", "tue", "wed", "thu",
	"fri", "sat", "sun" };
static const char *const date_wdays_long[7] = { "monday", "tuesday",
	"wednesday", "thursday", "friday", "saturday", "sunday" };

/* Zone names of RFC 5322 section 4.3, and what they mean. */
static const struct {
	const char *name;
	int hours;
} date_zones[] = {
	{ "ut", 0 }, { "utc", 0 }, { "gmt", 0 }, { "z", 0 }, { "est", -5 },
	{ "edt", -4 }, { "cst", -6 }, { "cdt", -5 }, { "mst", -7 },
	{ "mdt", -6 }, { "pst", -8 }, { "pdt", -7 },
};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
date_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (era * 146097 + doe - 719468);
}

static bool
date_leap(int64_t y)
{
	return ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0);
}

static int
date_mdays(int64_t y, int m)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
		31, 30, 31 };

	return (m == 2 && date_leap(y) ? 29 : mdays[m - 1]);
}

/* Checks ranges and converts to unix seconds. */
static int
date_to_unix(const struct date_fields *f, int64_t *t_r)
{
	int64_t days;

	if (f->year < 1000 || f->year > 9999 || f->month < 1 ||
	    f->month > 12 || f->day < 1 ||
	    f->day > date_mdays(f->year, f->month) || f->hour < 0 ||
	    f->hour > 23 || f->min < 0 || f->min > 59 || f->sec < 0 ||
	    f->sec > 60) {
		return (ERR_INVAL);
	}
	days = date_days_from_civil(f->year, f->month, f->day);
	*t_r = days * 86400 + f->hour * 3600 + f->min * 60 + f->sec -
	    f->zone_s;
	return (ERR_OK);
}

static bool
date_is_alpha(char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

static bool
date_is_digit(char c)
{
	return (c >= '0' && c <= '9');
}

/*
 * Splits s[0..n) into tokens, dropping whitespace and (nested, quoted-pair
 * aware) comments. ERR_INVAL on any other character or too many tokens.
 */
static int
date_tokenize(const char *s, size_t n, struct date_toks *tk)
{
	struct date_tok *t;
	size_t i = 0, depth;

	tk->n = 0;
	tk->pos = 0;
	while (i < n) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
		    s[i] == '\n') {
			i++;
			continue;
		}
		if (s[i] == '(') {
			depth = 0;
			for (; i < n; i++) {
				if (s[i] == '\\') {
					i++;
				} else if (s[i] == '(') {
					depth++;
				} else if (s[i] == ')' && --depth == 0) {
					break;
				}
			}
			if (i >= n) {
				return (ERR_INVAL); /* unterminated comment */
			}
			i++;
			continue;
		}
		if (tk->n == DATE_MAX_TOKENS) {
			return (ERR_INVAL);
		}
		t = &tk->t[tk->n++];
		t->s = s + i;
		t->num = 0;
		if (date_is_digit(s[i])) {
			t->kind = DATE_NUM;
			while (i < n && date_is_digit(s[i])) {
				if (s + i - t->s >= 9) {
					return (ERR_INVAL);
				}
				t->num = t->num * 10 + (s[i] - '0');
				i++;
			}
		} else if (date_is_alpha(s[i])) {
			t->kind = DATE_WORD;
			while (i < n && date_is_alpha(s[i])) {
				i++;
			}
		} else if (s[i] == ',' || s[i] == ':' || s[i] == '+' ||
		    s[i] == '-') {
			t->kind = DATE_PUNCT;
			i++;
		} else {
			return (ERR_INVAL);
		}
		t->len = (size_t)(s + i - t->s);
	}
	return (ERR_OK);
}

/* The next token, or NULL at the end. */
static const struct date_tok *
date_peek(const struct date_toks *tk)
{
	return (tk->pos < tk->n ? &tk->t[tk->pos] : NULL);
}

static bool
date_accept_punct(struct date_toks *tk, char c)
{
	const struct date_tok *t = date_peek(tk);

	if (t == NULL || t->kind != DATE_PUNCT || t->s[0] != c) {
		return (false);
	}
	tk->pos++;
	return (true);
}

/* A number of minlen..maxlen digits; ERR_INVAL otherwise. */
static int
date_expect_num(struct date_toks *tk, size_t minlen, size_t maxlen,
    int64_t *v_r)
{
	const struct date_tok *t = date_peek(tk);

	if (t == NULL || t->kind != DATE_NUM || t->len < minlen ||
	    t->len > maxlen) {
		return (ERR_INVAL);
	}
	*v_r = t->num;
	tk->pos++;
	return (ERR_OK);
}

/* Index of the word t in the short (3-letter) or long names, or -1. */
static int
date_lookup(const struct date_tok *t, const char *const *shortn,
    const char *const *longn, int count)
{
	int i;

	if (t == NULL || t->kind != DATE_WORD) {
		return (-1);
	}
	for (i = 0; i < count; i++) {
		if ((t->len == 3 && strncasecmp(t->s, shortn[i], 3) == 0) ||
		    (t->len == strlen(longn[i]) &&
			strncasecmp(t->s, longn[i], t->len) == 0)) {
			return (i);
		}
	}
	return (-1);
}

/* "+hhmm" / "-hhmm" or a zone name; the zone may be missing (UTC). */
static int
date_parse_zone(struct date_toks *tk, int *zone_s)
{
	const struct date_tok *t;
	int64_t v;
	size_t i;
	int sign;
	char c;

	*zone_s = 0;
	t = date_peek(tk);
	if (t == NULL) {
		return (ERR_OK);
	}
	if (t->kind == DATE_PUNCT && (t->s[0] == '+' || t->s[0] == '-')) {
		sign = t->s[0] == '-' ? -1 : 1;
		tk->pos++;
		if (date_expect_num(tk, 4, 4, &v) != 0 || v / 100 > 23 ||
		    v % 100 > 59) {
			return (ERR_INVAL);
		}
		*zone_s = sign * (int)(v / 100 * 3600 + v % 100 * 60);
		/* "+0000 (UTC)" is common, and so is "+0000 GMT". */
		t = date_peek(tk);
		if (t != NULL && t->kind == DATE_WORD && t->len <= 5) {
			tk->pos++;
		}
		return (ERR_OK);
	}
	if (t->kind != DATE_WORD) {
		return (ERR_INVAL);
	}
	tk->pos++;
	for (i = 0; i < ARRAY_LEN(date_zones); i++) {
		if (t->len == strlen(date_zones[i].name) &&
		    strncasecmp(t->s, date_zones[i].name, t->len) == 0) {
			*zone_s = date_zones[i].hours * 3600;
			return (ERR_OK);
		}
	}
	/* Military zones: any single letter but J, taken as +0000. */
	c = t->s[0];
	if (t->len == 1 && c != 'j' && c != 'J') {
		return (ERR_OK);
	}
	return (ERR_INVAL);
}

int
mime_parse_date(const char *in, size_t len, int64_t *t_r)
{
	struct date_toks tk;
	struct date_fields f;
	int64_t v;
	int rv, m;

	if (len > DATE_MAX_LEN || memchr(in, '\0', len) != NULL) {
		return (ERR_INVAL);
	}
	rv = date_tokenize(in, len, &tk);
	if (rv != 0) {
		return (rv);
	}
	memset(&f, 0, sizeof(f));
	/* [day-of-week [","]] */
	if (date_lookup(date_peek(&tk), date_wdays, date_wdays_long, 7) >= 0) {
		tk.pos++;
		(void)date_accept_punct(&tk, ',');
	}
	/* day month year */
	if (date_expect_num(&tk, 1, 2, &v) != 0) {
		return (ERR_INVAL);
	}
	f.day = (int)v;
	(void)date_accept_punct(&tk, '-');
	m = date_lookup(date_peek(&tk), date_months, date_months_long, 12);
	if (m < 0) {
		return (ERR_INVAL);
	}
	tk.pos++;
	f.month = m + 1;
	(void)date_accept_punct(&tk, '-');
	if (date_expect_num(&tk, 2, 4, &v) != 0) {
		return (ERR_INVAL);
	}
	/* RFC 5322 4.3: 2 digits are 19xx from 50, 20xx below; 3 digits
	 * add 1900. */
	if (tk.t[tk.pos - 1].len == 2) {
		v += v < 50 ? 2000 : 1900;
	} else if (tk.t[tk.pos - 1].len == 3) {
		v += 1900;
	}
	f.year = v;
	/* hour ":" minute [":" second] */
	if (date_expect_num(&tk, 1, 2, &v) != 0) {
		return (ERR_INVAL);
	}
	f.hour = (int)v;
	if (!date_accept_punct(&tk, ':') ||
	    date_expect_num(&tk, 1, 2, &v) != 0) {
		return (ERR_INVAL);
	}
	f.min = (int)v;
	if (date_accept_punct(&tk, ':')) {
		if (date_expect_num(&tk, 1, 2, &v) != 0) {
			return (ERR_INVAL);
		}
		f.sec = (int)v;
	}
	rv = date_parse_zone(&tk, &f.zone_s);
	if (rv != 0 || tk.pos != tk.n) {
		return (ERR_INVAL);
	}
	return (date_to_unix(&f, t_r));
}

/* Exactly two digits at s; -1 otherwise. */
static int
date_2digits(const char *s)
{
	if (!date_is_digit(s[0]) || !date_is_digit(s[1])) {
		return (-1);
	}
	return ((s[0] - '0') * 10 + (s[1] - '0'));
}

int
mime_parse_internaldate(const char *in, size_t len, int64_t *t_r)
{
	/* dd-Mon-yyyy hh:mm:ss +zzzz, with dd possibly " d" or "d". */
	char s[32];
	struct date_fields f;
	const char *p;
	int i, v, zh, zm;

	if (len >= 2 && in[0] == '"' && in[len - 1] == '"') {
		in++;
		len -= 2;
	}
	if (len == 26 && in[0] == ' ') {
		in++;
		len--;
	}
	if (len == 26) {
		memcpy(s, in, len);
	} else if (len == 25) {
		s[0] = '0';
		memcpy(s + 1, in, len);
	} else {
		return (ERR_INVAL);
	}
	s[26] = '\0';
	memset(&f, 0, sizeof(f));
	if (memchr(s, '\0', 26) != NULL || s[2] != '-' || s[6] != '-' ||
	    s[11] != ' ' || s[14] != ':' || s[17] != ':' || s[20] != ' ' ||
	    (s[21] != '+' && s[21] != '-')) {
		return (ERR_INVAL);
	}
	f.day = date_2digits(s);
	f.month = 0;
	for (i = 0; i < 12; i++) {
		if (strncasecmp(s + 3, date_months[i], 3) == 0) {
			f.month = i + 1;
		}
	}
	for (i = 7, v = 0; i < 11; i++) {
		if (!date_is_digit(s[i])) {
			return (ERR_INVAL);
		}
		v = v * 10 + (s[i] - '0');
	}
	f.year = v;
	f.hour = date_2digits(s + 12);
	f.min = date_2digits(s + 15);
	f.sec = date_2digits(s + 18);
	p = s + 22;
	zh = date_2digits(p);
	zm = date_2digits(p + 2);
	if (f.day < 0 || f.month == 0 || zh < 0 || zh > 23 || zm < 0 ||
	    zm > 59) {
		return (ERR_INVAL);
	}
	f.zone_s = (s[21] == '-' ? -1 : 1) * (zh * 3600 + zm * 60);
	return (date_to_unix(&f, t_r));
}

int
mime_parse_rfc3339(const char *in, size_t len, int64_t *t_r)
{
	/* yyyy-mm-ddThh:mm:ss[.frac](Z|+hh:mm|-hh:mm) (JMAP UTCDate/Date) */
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	struct date_fields f;
	size_t i, k;
	int zh, zm;

	if (len < sizeof(shape) - 1 + 1) {
		return (ERR_INVAL);
	}
	for (i = 0; i < sizeof(shape) - 1; i++) {
		bool ok = shape[i] == 'd' ? date_is_digit(in[i])
		    : shape[i] == 'T'     ? (in[i] == 'T' || in[i] == 't')
					  : in[i] == shape[i];

		if (!ok) {
			return (ERR_INVAL);
		}
	}
	memset(&f, 0, sizeof(f));
	f.year = date_2digits(in) * 100 + date_2digits(in + 2);
	f.month = date_2digits(in + 5);
	f.day = date_2digits(in + 8);
	f.hour = date_2digits(in + 11);
	f.min = date_2digits(in + 14);
	f.sec = date_2digits(in + 17);
	k = i;
	if (k < len && in[k] == '.') {
		for (k++; k < len && date_is_digit(in[k]); k++) {
		}
	}
	if (k + 1 == len && (in[k] == 'Z' || in[k] == 'z')) {
		f.zone_s = 0;
	} else if (k + 6 == len && (in[k] == '+' || in[k] == '-')
	    && in[k + 3] == ':' && (zh = date_2digits(in + k + 1)) >= 0
	    && (zm = date_2digits(in + k + 4)) >= 0 && zh < 24 && zm < 60) {
		f.zone_s = (in[k] == '-' ? -1 : 1) * (zh * 3600 + zm * 60);
	} else {
		return (ERR_INVAL);
	}
	return (date_to_unix(&f, t_r));
}
