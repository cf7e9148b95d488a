/*
 * config.c - file, environment and flags. See config.h.
 */
#include "server/config.h"

#include "db/sha256.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void backend_cfg_release(struct backend_cfg *b)
{
	free(b->name);
	free(b->url);
	free(b->keep_alive);
	memset(b, 0, sizeof(*b));
}

static void clear_backends(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nbackends; i++)
		backend_cfg_release(&cfg->backends[i]);
	free(cfg->backends);
	cfg->backends = NULL;
	cfg->nbackends = 0;
}

static void add_backend(struct config *cfg, const struct backend_cfg *b)
{
	cfg->backends = xrealloc(cfg->backends, (cfg->nbackends + 1) * sizeof(*b));
	cfg->backends[cfg->nbackends++] = *b;
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = xstrdup(s);
}

/*
 * Keeps a token only as its SHA-256: "sha256:<64 hex>" is taken as a hash
 * already (how the config file should hold them); anything else is a token,
 * hashed here and not kept.
 */
static int add_token(struct config *cfg, const char *tok, struct perr *e)
{
	char hex[65];
	size_t i;

	if (strncmp(tok, "sha256:", 7) == 0) {
		const char *h = tok + 7;
		if (strlen(h) != 64)
			return perr_set(e, PERR_INVALID, "a token hash is 'sha256:' and 64 hex digits");
		for (i = 0; i < 64; i++) {
			if (!strchr("0123456789abcdef", h[i]))
				return perr_set(e, PERR_INVALID,
						"a token hash is 'sha256:' and 64 lowercase hex digits");
			hex[i] = h[i];
		}
		hex[64] = '\0';
	} else {
		if (strlen(tok) < 16)
			return perr_set(e, PERR_INVALID, "a token must be at least 16 characters");
		sha256_hex(tok, strlen(tok), hex);
	}
	cfg->tokens = xrealloc(cfg->tokens, (cfg->ntokens + 1) * sizeof(char *));
	cfg->tokens[cfg->ntokens++] = xstrdup(hex);
	return 0;
}

/* Normalises a URL: adds http://, drops trailing slashes. */
static char *normalize_url(const char *u, const char *default_port)
{
	struct strbuf sb;

	strbuf_init(&sb, strlen(u) + 16);
	if (!strstr(u, "://"))
		strbuf_addstr(&sb, "http://");
	strbuf_addstr(&sb, u);
	while (sb.len > 0 && sb.buf[sb.len - 1] == '/')
		sb.buf[--sb.len] = '\0';
	if (default_port) {
		/* OLLAMA_HOST may be "0.0.0.0" or "host" without a port */
		const char *p = strstr(sb.buf, "://") + 3;
		if (strncmp(p, "0.0.0.0", 7) == 0) {
			size_t off = (size_t)(p - sb.buf);
			char *rest = xstrdup(p + 7);
			sb.len = off;
			strbuf_addstr(&sb, "127.0.0.1");
			strbuf_addstr(&sb, rest);
			free(rest);
			p = sb.buf + off;
		}
		if (!strchr(p, ':') && !strchr(p, '/'))
			strbuf_addf(&sb, ":%s", default_port);
	}
	return strbuf_detach(&sb, NULL);
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_listen(struct config *cfg, const char *s, struct perr *e)
{
	const char *colon = strrchr(s, ':');
	long port;

	if (!colon || colon == s || parse_int(colon + 1, 0, 65535, &port) < 0)
		return perr_set(e, PERR_INVALID, "listen address '%s' is not HOST:PORT", s);
	free(cfg->listen_host);
	cfg->listen_host = xstrndup(s, (size_t)(colon - s));
	cfg->listen_port = (int)port;
	return 0;
}

int config_parse_backend(const char *spec, struct backend_cfg *b, struct perr *e)
{
	char *copy = xstrdup(spec), *save = NULL, *tok;
	int have_kind = 0;
	long v;

	memset(b, 0, sizeof(*b));
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq) {
			perr_set(e, PERR_INVALID, "backend '%s': '%s' is not key=value", spec, tok);
			goto fail;
		}
		*eq++ = '\0';
		if (strcmp(tok, "name") == 0) {
			set_str(&b->name, eq);
		} else if (strcmp(tok, "kind") == 0) {
			if (backend_kind_parse(eq, &b->kind) < 0) {
				perr_set(e, PERR_INVALID,
					 "backend '%s': kind '%s' is not 'ollama' or 'llama-server'",
					 spec, eq);
				goto fail;
			}
			have_kind = 1;
		} else if (strcmp(tok, "url") == 0) {
			free(b->url);
			b->url = normalize_url(eq, NULL);
		} else if (strcmp(tok, "max_concurrency") == 0) {
			if (parse_int(eq, 1, 1024, &v) < 0) {
				perr_set(e, PERR_INVALID,
					 "backend '%s': max_concurrency must be 1 to 1024", spec);
				goto fail;
			}
			b->max_concurrency = (int)v;
		} else {
			perr_set(e, PERR_INVALID, "backend '%s': unknown key '%s'", spec, tok);
			goto fail;
		}
	}
	if (!b->name || !*b->name || !have_kind || !b->url) {
		perr_set(e, PERR_INVALID, "backend '%s' needs name, kind and url", spec);
		goto fail;
	}
	free(copy);
	return 0;
fail:
	free(copy);
	backend_cfg_release(b);
	return -1;
}

static int json_backend(json_t *o, struct backend_cfg *b, struct perr *e)
{
	const char *key;
	json_t *v; /* borrowed */

	memset(b, 0, sizeof(*b));
	if (!json_is_object(o))
		return perr_set(e, PERR_INVALID, "config: each backend must be an object");
	json_object_foreach(o, key, v)
	{
		if (strcmp(key, "name") == 0 && json_is_string(v)) {
			set_str(&b->name, json_string_value(v));
		} else if (strcmp(key, "kind") == 0 && json_is_string(v)) {
			if (backend_kind_parse(json_string_value(v), &b->kind) < 0)
				goto bad;
		} else if (strcmp(key, "url") == 0 && json_is_string(v)) {
			free(b->url);
			b->url = normalize_url(json_string_value(v), NULL);
		} else if (strcmp(key, "max_concurrency") == 0 && json_is_integer(v)) {
			b->max_concurrency = (int)json_integer_value(v);
		} else if (strcmp(key, "connect_timeout_ms") == 0 && json_is_integer(v)) {
			b->connect_timeout_ms = (long)json_integer_value(v);
		} else if (strcmp(key, "first_byte_timeout_ms") == 0 && json_is_integer(v)) {
			b->first_byte_timeout_ms = (long)json_integer_value(v);
		} else if (strcmp(key, "idle_timeout_ms") == 0 && json_is_integer(v)) {
			b->idle_timeout_ms = (long)json_integer_value(v);
		} else if (strcmp(key, "total_timeout_ms") == 0 && json_is_integer(v)) {
			b->total_timeout_ms = (long)json_integer_value(v);
		} else if (strcmp(key, "keep_alive") == 0 && json_is_string(v)) {
			set_str(&b->keep_alive, json_string_value(v));
		} else if (strcmp(key, "num_ctx") == 0 && json_is_integer(v)) {
			b->num_ctx = (int)json_integer_value(v);
		} else {
			goto bad;
		}
		continue;
	bad:
		backend_cfg_release(b);
		return perr_set(e, PERR_INVALID, "config: backend key '%s' is unknown or has a bad value",
				key);
	}
	if (!b->name || !b->url) {
		backend_cfg_release(b);
		return perr_set(e, PERR_INVALID, "config: a backend needs name, kind and url");
	}
	return 0;
}

static void free_names(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * A list of host names or origins: non-empty strings of printable ASCII (a
 * Host or Origin header holds nothing else), kept in lower case because both
 * compare case-insensitively.
 */
static int load_names(json_t *arr, char ***out, size_t *nout)
{
	json_t *t; /* borrowed */
	size_t i, k;

	free_names(*out, *nout);
	*out = NULL;
	*nout = 0;
	json_array_foreach(arr, i, t)
	{
		const char *s = json_string_value(t);
		char *copy;

		if (!s || !*s)
			return -1;
		for (k = 0; s[k]; k++)
			if ((unsigned char)s[k] <= ' ' || (unsigned char)s[k] >= 0x7f)
				return -1;
		copy = xstrdup(s);
		for (k = 0; copy[k]; k++)
			if (copy[k] >= 'A' && copy[k] <= 'Z')
				copy[k] = (char)(copy[k] - 'A' + 'a');
		*out = xrealloc(*out, (*nout + 1) * sizeof(char *));
		(*out)[(*nout)++] = copy;
	}
	return 0;
}

static int load_file(struct config *cfg, const char *path, struct perr *e)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), *v; /* owned; borrowed */
	const char *key;
	size_t i;

	if (!root)
		return perr_set(e, PERR_INVALID, "cannot read config '%s': %s (line %d)", path,
				jerr.text, jerr.line);
	if (!json_is_object(root)) {
		json_decref(root);
		return perr_set(e, PERR_INVALID, "config '%s' must be a JSON object", path);
	}
	json_object_foreach(root, key, v)
	{
#define INT_KEY(name, field, lo, hi)                                                               \
	if (strcmp(key, name) == 0) {                                                              \
		if (!json_is_integer(v) || json_integer_value(v) < (lo) ||                         \
		    json_integer_value(v) > (hi))                                                  \
			goto bad;                                                                  \
		cfg->field = json_integer_value(v);                                                \
		continue;                                                                          \
	}
		INT_KEY("workers", workers, 1, 256)
		INT_KEY("http_threads", http_threads, 1, 64)
		INT_KEY("max_body_bytes", max_body_bytes, 1024, 64 << 20)
		INT_KEY("max_json_depth", max_json_depth, 2, 1000)
		INT_KEY("max_queued_jobs", max_queued_jobs, 1, 10000000)
		INT_KEY("connection_timeout_s", connection_timeout_s, 1, 3600)
		INT_KEY("max_connections", max_connections, 1, 100000)
		INT_KEY("max_connections_per_ip", max_connections_per_ip, 1, 100000)
		INT_KEY("request_timeout_s", request_timeout_s, 1, 3600)
		INT_KEY("max_reply_bytes", max_reply_bytes, 4096, (json_int_t)1 << 30)
		INT_KEY("drain_timeout_s", drain_timeout_s, 0, 3600)
		INT_KEY("retry_max_attempts", retry_max_attempts, 1, 20)
		INT_KEY("retry_base_delay_ms", retry_base_delay_ms, 1, 600000)
		INT_KEY("retry_max_delay_ms", retry_max_delay_ms, 1, 3600000)
#undef INT_KEY
		if (strcmp(key, "listen") == 0 && json_is_string(v)) {
			if (parse_listen(cfg, json_string_value(v), e) < 0)
				goto fail;
		} else if (strcmp(key, "db") == 0 && json_is_string(v)) {
			set_str(&cfg->db_path, json_string_value(v));
		} else if (strcmp(key, "log_level") == 0 && json_is_string(v)) {
			set_str(&cfg->log_level, json_string_value(v));
		} else if (strcmp(key, "synchronous") == 0 && json_is_string(v)) {
			set_str(&cfg->synchronous, json_string_value(v));
		} else if (strcmp(key, "tokens") == 0 && json_is_array(v)) {
			json_t *t; /* borrowed */
			json_array_foreach(v, i, t)
			{
				if (!json_is_string(t) || !*json_string_value(t))
					goto bad;
				if (add_token(cfg, json_string_value(t), e) < 0)
					goto fail;
			}
		} else if (strcmp(key, "allowed_hosts") == 0 && json_is_array(v)) {
			if (load_names(v, &cfg->allowed_hosts, &cfg->nallowed_hosts) < 0)
				goto bad;
		} else if (strcmp(key, "allowed_origins") == 0 && json_is_array(v)) {
			if (load_names(v, &cfg->allowed_origins, &cfg->nallowed_origins) < 0)
				goto bad;
		} else if (strcmp(key, "backends") == 0 && json_is_array(v)) {
			json_t *b; /* borrowed */
			clear_backends(cfg);
			json_array_foreach(v, i, b)
			{
				struct backend_cfg bc;
				if (json_backend(b, &bc, e) < 0)
					goto fail;
				add_backend(cfg, &bc);
			}
		} else {
			goto bad;
		}
	}
	json_decref(root);
	return 0;
bad:
	perr_set(e, PERR_INVALID, "config '%s': key '%s' is unknown or has a bad value", path, key);
fail:
	json_decref(root);
	return -1;
}

static int load_backends_list(struct config *cfg, const char *list, struct perr *e)
{
	char *copy = xstrdup(list), *save = NULL, *tok;

	clear_backends(cfg);
	for (tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		struct backend_cfg b;
		if (!*tok)
			continue;
		if (config_parse_backend(tok, &b, e) < 0) {
			free(copy);
			return -1;
		}
		add_backend(cfg, &b);
	}
	free(copy);
	return 0;
}

static int read_token_file(struct config *cfg, const char *path, struct perr *e)
{
	FILE *f = fopen(path, "r");
	char line[1024];

	if (!f)
		return perr_set(e, PERR_INVALID, "cannot read token file '%s': %s", path,
				strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\r\n");
		line[n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (add_token(cfg, line, e) < 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	if (cfg->ntokens == 0)
		return perr_set(e, PERR_INVALID, "token file '%s' holds no token", path);
	return 0;
}

void config_usage(void)
{
	fputs("usage: parleyd [options]\n"
	      "\n"
	      "Runs AI-to-AI optimization conversations against Ollama or llama-server.\n"
	      "\n"
	      "  --config FILE        JSON config file (PARLEY_CONFIG)\n"
	      "  --listen HOST:PORT   address to listen on (PARLEY_LISTEN, default 127.0.0.1:8080)\n"
	      "  --db FILE            SQLite database (PARLEY_DB, default ./parley.db)\n"
	      "  --workers N          worker threads (PARLEY_WORKERS, default 4)\n"
	      "  --backend SPEC       name=N,kind=ollama|llama-server,url=U[,max_concurrency=C];\n"
	      "                       repeatable (PARLEY_BACKENDS, entries separated by ';')\n"
	      "  --token-file FILE    bearer tokens, one a line, plain or as sha256:<hex>\n"
	      "                       (PARLEY_TOKEN: one token)\n"
	      "  --hash-token         print the sha256:<hex> form of the token on stdin\n"
	      "  --log-level LEVEL    debug, info, warn, error (PARLEY_LOG_LEVEL)\n"
	      "  --help               this text\n"
	      "  --version            the version\n"
	      "\n"
	      "With no backend configured, one Ollama backend named 'ollama' is used at\n"
	      "$OLLAMA_HOST or http://127.0.0.1:11434.\n",
	      stdout);
}

int config_load(struct config *cfg, int argc, char **argv, struct perr *e)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},  {"listen", required_argument, NULL, 'l'},
	    {"db", required_argument, NULL, 'd'},      {"workers", required_argument, NULL, 'w'},
	    {"backend", required_argument, NULL, 'b'}, {"token-file", required_argument, NULL, 't'},
	    {"log-level", required_argument, NULL, 'L'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},       {"hash-token", no_argument, NULL, 'H'},
	    {NULL, 0, NULL, 0},
	};
	const char *config_path = getenv("PARLEY_CONFIG"), *s;
	int opt, flag_backends = 0;
	long v;

	memset(cfg, 0, sizeof(*cfg));
	cfg->listen_host = xstrdup("127.0.0.1");
	cfg->listen_port = 8080;
	cfg->db_path = xstrdup("./parley.db");
	cfg->workers = 4;
	cfg->http_threads = 4;
	cfg->log_level = xstrdup("info");
	cfg->synchronous = xstrdup("FULL");
	cfg->max_body_bytes = 1 << 20;
	cfg->max_json_depth = 32;
	cfg->max_queued_jobs = 100000;
	cfg->connection_timeout_s = 30;
	cfg->max_connections = 1024;
	/* 8 addresses at the limit still leave half of max_connections to everyone else */
	cfg->max_connections_per_ip = 64;
	cfg->request_timeout_s = 10;
	cfg->max_reply_bytes = 4 << 20;
	cfg->drain_timeout_s = 30;
	cfg->retry_max_attempts = 5;
	cfg->retry_base_delay_ms = 500;
	cfg->retry_max_delay_ms = 30000;

	/* the config file comes first whatever the order of the flags */
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'h') {
			config_usage();
			return 1;
		}
		if (opt == 'V') {
			printf("parleyd %s\n", PARLEY_VERSION);
			return 1;
		}
		if (opt == 'H') {
			char line[1024], hex[65];
			size_t n;
			if (!fgets(line, sizeof(line), stdin))
				return perr_set(e, PERR_INVALID, "--hash-token reads a token on stdin");
			n = strcspn(line, "\r\n");
			line[n] = '\0';
			sha256_hex(line, n, hex);
			printf("sha256:%s\n", hex);
			return 1;
		}
		if (opt == 'c')
			config_path = optarg;
		if (opt == '?')
			return perr_set(e, PERR_INVALID, "unknown or incomplete option '%s'; see --help",
					argv[optind - 1]);
	}
	if (config_path && load_file(cfg, config_path, e) < 0)
		return -1;

	if ((s = getenv("PARLEY_LISTEN")) && parse_listen(cfg, s, e) < 0)
		return -1;
	if ((s = getenv("PARLEY_DB")))
		set_str(&cfg->db_path, s);
	if ((s = getenv("PARLEY_WORKERS"))) {
		if (parse_int(s, 1, 256, &v) < 0)
			return perr_set(e, PERR_INVALID, "PARLEY_WORKERS must be 1 to 256");
		cfg->workers = (int)v;
	}
	if ((s = getenv("PARLEY_BACKENDS")) && *s && load_backends_list(cfg, s, e) < 0)
		return -1;
	if ((s = getenv("PARLEY_TOKEN")) && *s && add_token(cfg, s, e) < 0)
		return -1;
	if ((s = getenv("PARLEY_LOG_LEVEL")))
		set_str(&cfg->log_level, s);

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (parse_listen(cfg, optarg, e) < 0)
				return -1;
			break;
		case 'd':
			set_str(&cfg->db_path, optarg);
			break;
		case 'w':
			if (parse_int(optarg, 1, 256, &v) < 0)
				return perr_set(e, PERR_INVALID, "--workers must be 1 to 256");
			cfg->workers = (int)v;
			break;
		case 'b': {
			struct backend_cfg b;
			if (!flag_backends)
				clear_backends(cfg);
			flag_backends = 1;
			if (config_parse_backend(optarg, &b, e) < 0)
				return -1;
			add_backend(cfg, &b);
			break;
		}
		case 't':
			if (read_token_file(cfg, optarg, e) < 0)
				return -1;
			break;
		case 'L':
			set_str(&cfg->log_level, optarg);
			break;
		default:
			break;
		}
	}
	if (optind < argc)
		return perr_set(e, PERR_INVALID, "unexpected argument '%s'; see --help", argv[optind]);

	if (cfg->nbackends == 0) {
		struct backend_cfg b;
		memset(&b, 0, sizeof(b));
		b.name = xstrdup("ollama");
		b.kind = BACKEND_OLLAMA;
		s = getenv("OLLAMA_HOST");
		b.url = normalize_url(s && *s ? s : "http://127.0.0.1:11434", "11434");
		add_backend(cfg, &b);
	}
	for (size_t i = 0; i < cfg->nbackends; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->backends[i].name, cfg->backends[j].name) == 0)
				return perr_set(e, PERR_INVALID, "backend name '%s' is used twice",
						cfg->backends[i].name);
	for (size_t i = 0; i < cfg->nbackends; i++)
		cfg->backends[i].max_reply_bytes = cfg->max_reply_bytes;
	if (strcmp(cfg->synchronous, "FULL") != 0 && strcmp(cfg->synchronous, "NORMAL") != 0)
		return perr_set(e, PERR_INVALID, "synchronous must be FULL or NORMAL");
	return 0;
}

void config_release(struct config *cfg)
{
	size_t i;

	free(cfg->listen_host);
	free(cfg->db_path);
	free(cfg->log_level);
	free(cfg->synchronous);
	for (i = 0; i < cfg->ntokens; i++)
		free(cfg->tokens[i]);
	free(cfg->tokens);
	free_names(cfg->allowed_hosts, cfg->nallowed_hosts);
	free_names(cfg->allowed_origins, cfg->nallowed_origins);
	clear_backends(cfg);
	memset(cfg, 0, sizeof(*cfg));
}
