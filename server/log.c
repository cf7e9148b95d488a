/*
 * log.c - structured log lines. See log.h.
 */
#include "server/log.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/util.h"

/* Longer lines are cut: one line is one write(2), and a log is read by people. */
#define LOG_MAX_LINE 4096

static enum log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};
/* The request this thread is serving, appended to each of its lines; "" when none. */
static __thread char request_id[80];

void log_set_request_id(const char *id)
{
	snprintf(request_id, sizeof(request_id), "%s", id ? id : "");
}

void log_set_level(enum log_level lvl)
{
	min_level = lvl;
}

int log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* Appends the bytes of v to sb escaped for a quoted logfmt value. */
static void add_escaped(struct strbuf *sb, const char *v, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '"' || c == '\\') {
			strbuf_addch(sb, '\\');
			strbuf_addch(sb, c);
		} else if (c == '\n') {
			strbuf_addstr(sb, "\\n");
		} else if (c == '\r') {
			strbuf_addstr(sb, "\\r");
		} else if (c == '\t') {
			strbuf_addstr(sb, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			/* ESC and the like would drive the terminal that shows the log */
			strbuf_addstr(sb, "\\x");
			strbuf_addch(sb, hex[c >> 4]);
			strbuf_addch(sb, hex[c & 15]);
		} else {
			strbuf_addch(sb, c);
		}
	}
}

/* A value written bare (key=%s) that needs quotes to stay one value. */
static int needs_quotes(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] <= ' ' || v[i] == '"' || v[i] == '=' || v[i] == 0x7f)
			return 1;
	return 0;
}

/*
 * vsnprintf() in the manner of the callers' key=value formats, with every %s
 * escaped: inside the format's quotes (key="%s") quotes, backslashes and
 * control characters are escaped; a bare value (key=%s) that holds a space, a
 * quote, an '=' or a control character is quoted as well. So no value - a
 * model name, a backend's error text, a URL path - can end its line or forge
 * another key. Other conversions are printed by snprintf() itself.
 */
static void format_kv(struct strbuf *sb, const char *fmt, va_list *ap)
{
	int quoted = 0;

	while (*fmt) {
		const char *start = fmt;
		char spec[32], conv;
		int len_l = 0, len_z = 0, len_h = 0, len_j = 0, len_t = 0, len_L = 0;
		int width = -1, prec = -1, star_w = 0, star_p = 0;
		size_t k;

		if (*fmt != '%') {
			if (*fmt == '"')
				quoted = !quoted;
			strbuf_addch(sb, *fmt++);
			continue;
		}
		fmt++;
		if (*fmt == '%') {
			strbuf_addch(sb, '%');
			fmt++;
			continue;
		}
		while (strchr("-+ #0", *fmt) && *fmt)
			fmt++;
		if (*fmt == '*') {
			star_w = 1;
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			fmt++;
		if (*fmt == '.') {
			fmt++;
			if (*fmt == '*') {
				star_p = 1;
				fmt++;
			}
			while (*fmt >= '0' && *fmt <= '9')
				fmt++;
		}
		for (;; fmt++) {
			if (*fmt == 'l')
				len_l++;
			else if (*fmt == 'z')
				len_z = 1;
			else if (*fmt == 'h')
				len_h = 1;
			else if (*fmt == 'j')
				len_j = 1;
			else if (*fmt == 't')
				len_t = 1;
			else if (*fmt == 'L')
				len_L = 1;
			else
				break;
		}
		conv = *fmt;
		if (!conv)
			break;
		fmt++;
		k = (size_t)(fmt - start);
		if (k >= sizeof(spec))
			break; /* no format of ours is this long */
		memcpy(spec, start, k);
		spec[k] = '\0';
		if (star_w)
			width = va_arg(*ap, int);
		if (star_p)
			prec = va_arg(*ap, int);
		if (conv == 's') {
			const char *v = va_arg(*ap, const char *);
			const char *dot = strchr(spec, '.');
			size_t n;

			if (!v)
				v = "(null)";
			if (dot && !star_p)
				prec = atoi(dot + 1);
			n = prec >= 0 ? strnlen(v, (size_t)prec) : strlen(v);
			if (quoted) {
				add_escaped(sb, v, n);
			} else if (needs_quotes(v, n)) {
				strbuf_addch(sb, '"');
				add_escaped(sb, v, n);
				strbuf_addch(sb, '"');
			} else {
				strbuf_add(sb, v, n);
			}
			continue;
		}
		(void)width;
#define ONE(type) strbuf_addf(sb, spec, va_arg(*ap, type))
#define ONE_STAR(type)                                                                             \
	do {                                                                                       \
		type v_ = va_arg(*ap, type);                                                       \
		if (star_w && star_p)                                                              \
			strbuf_addf(sb, spec, width, prec, v_);                                    \
		else if (star_w)                                                                   \
			strbuf_addf(sb, spec, width, v_);                                          \
		else if (star_p)                                                                   \
			strbuf_addf(sb, spec, prec, v_);                                           \
		else                                                                               \
			strbuf_addf(sb, spec, v_);                                                 \
	} while (0)
		switch (conv) {
		case 'd':
		case 'i':
		case 'u':
		case 'x':
		case 'X':
		case 'o':
			if (len_l >= 2)
				ONE_STAR(long long);
			else if (len_l)
				ONE_STAR(long);
			else if (len_z)
				ONE_STAR(size_t);
			else if (len_j)
				ONE_STAR(intmax_t);
			else if (len_t)
				ONE_STAR(ptrdiff_t);
			else
				ONE_STAR(int); /* h and hh are promoted to int */
			break;
		case 'f':
		case 'F':
		case 'e':
		case 'E':
		case 'g':
		case 'G':
			if (len_L)
				ONE_STAR(long double);
			else
				ONE_STAR(double);
			break;
		case 'c':
			ONE(int);
			break;
		case 'p':
			ONE(void *);
			break;
		default:
			return; /* not a conversion our callers use: stop rather than misread */
		}
		(void)len_h;
#undef ONE
#undef ONE_STAR
	}
}

void log_msg(enum log_level lvl, const char *msg, const char *kvfmt, ...)
{
	char ts[32];
	struct strbuf line;
	va_list ap;

	if (lvl < min_level)
		return;
	util_iso8601(util_now_us(), ts);
	strbuf_init(&line, 256);
	strbuf_addf(&line, "ts=%s level=%s msg=\"", ts, level_names[lvl]);
	add_escaped(&line, msg, strlen(msg));
	strbuf_addch(&line, '"');
	if (kvfmt && *kvfmt) {
		strbuf_addch(&line, ' ');
		va_start(ap, kvfmt);
		format_kv(&line, kvfmt, &ap);
		va_end(ap);
	}
	if (request_id[0])
		strbuf_addf(&line, " request_id=%s", request_id); /* checked where it was set */
	/* a line stays one write(2) and one line, whatever the values held */
	if (line.len > LOG_MAX_LINE - 1)
		line.len = LOG_MAX_LINE - 1;
	line.buf[line.len++] = '\n';
	if (write(STDERR_FILENO, line.buf, line.len) < 0) {
		/* nowhere left to report it */
	}
	strbuf_release(&line);
}
