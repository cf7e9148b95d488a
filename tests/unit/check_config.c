/*
 * check_config.c - settings: file, then environment, then flags; bad ones
 * are refused with a message that says which and why: the file, the key,
 * what is wrong (unknown, wrong type, out of range) and what is expected.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/config.h"
#include "tests/harness.h"

static void clear_env(void)
{
	static const char *const vars[] = {"PARLEY_CONFIG",    "PARLEY_LISTEN",	  "PARLEY_DB",
					   "PARLEY_WORKERS",   "PARLEY_BACKENDS", "PARLEY_TOKEN",
					   "PARLEY_LOG_LEVEL", "OLLAMA_HOST",	  NULL};
	int i;

	for (i = 0; vars[i]; i++)
		unsetenv(vars[i]);
}

static int load(struct config *c, struct perr *e, const char *const *args)
{
	char *argv[16];
	int argc = 0;

	argv[argc++] = "parleyd";
	while (args && *args && argc < 15)
		argv[argc++] = (char *)(uintptr_t)*args++;
	argv[argc] = NULL;
	return config_load(c, argc, argv, e);
}

static char *write_file(const char *text)
{
	static int seq;
	char *path = xmalloc(512);
	FILE *f;

	snprintf(path, 512, "%s/cfg-%d-%d.json", harness_tmpdir(), (int)getpid(), seq++);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

START_TEST(defaults)
{
	struct config c;
	struct perr e = {0};

	clear_env();
	ck_assert_int_eq(load(&c, &e, NULL), 0);
	ck_assert_str_eq(c.listen_host, "127.0.0.1");
	ck_assert_int_eq(c.listen_port, 8080);
	ck_assert_str_eq(c.db_path, "./parley.db");
	ck_assert_int_eq(c.workers, 4);
	ck_assert_uint_eq(c.nbackends, 1);
	ck_assert_str_eq(c.backends[0].name, "ollama");
	ck_assert_str_eq(c.backends[0].url, "http://127.0.0.1:11434");
	ck_assert_uint_eq(c.ntokens, 0);
	config_release(&c);
}
END_TEST

START_TEST(ollama_host_forms)
{
	struct config c;
	struct perr e = {0};

	clear_env();
	setenv("OLLAMA_HOST", "0.0.0.0", 1);
	ck_assert_int_eq(load(&c, &e, NULL), 0);
	ck_assert_str_eq(c.backends[0].url, "http://127.0.0.1:11434");
	config_release(&c);
	setenv("OLLAMA_HOST", "gpu-box:11500/", 1);
	ck_assert_int_eq(load(&c, &e, NULL), 0);
	ck_assert_str_eq(c.backends[0].url, "http://gpu-box:11500");
	config_release(&c);
	clear_env();
}
END_TEST

START_TEST(file_then_env_then_flags)
{
	struct config c;
	struct perr e = {0};
	char *path = write_file("{\"listen\": \"127.0.0.1:9000\", \"workers\": 2, \"db\": \"f.db\","
				" \"backends\": [{\"name\":\"gpu\",\"kind\":\"llama-server\","
				"\"url\":\"http://10.0.0.2:9931\",\"max_concurrency\":3}]}");
	const char *flags[] = {"--workers", "7", NULL};

	clear_env();
	setenv("PARLEY_CONFIG", path, 1);
	setenv("PARLEY_DB", "env.db", 1);
	setenv("PARLEY_WORKERS", "5", 1);
	ck_assert_int_eq(load(&c, &e, flags), 0);
	ck_assert_int_eq(c.listen_port, 9000); /* file */
	ck_assert_str_eq(c.db_path, "env.db"); /* env over file */
	ck_assert_int_eq(c.workers, 7);	       /* flag over env */
	ck_assert_uint_eq(c.nbackends, 1);
	ck_assert_str_eq(c.backends[0].name, "gpu");
	ck_assert_int_eq(c.backends[0].kind, BACKEND_LLAMA);
	ck_assert_int_eq(c.backends[0].max_concurrency, 3);
	config_release(&c);
	clear_env();
	free(path);
}
END_TEST

START_TEST(backend_flags_and_env)
{
	struct config c;
	struct perr e = {0};
	const char *flags[] = {"--backend", "name=a,kind=ollama,url=127.0.0.1:11434", "--backend",
			       "name=b,kind=llama-server,url=http://h:1/,max_concurrency=2", NULL};

	clear_env();
	setenv("PARLEY_BACKENDS", "name=x,kind=ollama,url=http://x:1", 1);
	ck_assert_int_eq(load(&c, &e, flags), 0);
	ck_assert_uint_eq(c.nbackends, 2); /* flags replace the environment's list */
	ck_assert_str_eq(c.backends[0].url, "http://127.0.0.1:11434");
	ck_assert_str_eq(c.backends[1].url, "http://h:1");
	ck_assert_int_eq(c.backends[1].max_concurrency, 2);
	config_release(&c);
	clear_env();
}
END_TEST

START_TEST(bad_settings_are_refused)
{
	static const char *const bad_flags[][3] = {
	    {"--workers", "0", NULL},
	    {"--listen", "nowhere", NULL},
	    {"--backend", "name=a,kind=vllm,url=http://x", NULL},
	    {"--backend", "name=a,url=http://x", NULL},
	    {"--nonsense", NULL, NULL},
	};
	struct config c;
	struct perr e = {0};
	char *path;
	size_t i;

	clear_env();
	for (i = 0; i < ARRAY_SIZE(bad_flags); i++) {
		memset(&e, 0, sizeof(e));
		ck_assert_int_eq(load(&c, &e, bad_flags[i]), -1);
		ck_assert(strlen(e.msg) > 0);
		config_release(&c);
	}
	path = write_file("{\"wrokers\": 3}");
	setenv("PARLEY_CONFIG", path, 1);
	ck_assert_int_eq(load(&c, &e, NULL), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "wrokers"));
	config_release(&c);
	free(path);
	path = write_file("{\"tokens\": [\"short\"]}");
	setenv("PARLEY_CONFIG", path, 1);
	ck_assert_int_eq(load(&c, &e, NULL), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "16 characters"));
	config_release(&c);
	free(path);
	clear_env();
}
END_TEST

START_TEST(hosts_origins_and_limits)
{
	static const char *const bad[] = {
	    "{\"allowed_hosts\": [\"a b\"]}",	  "{\"allowed_hosts\": [\"\"]}",
	    "{\"allowed_origins\": [\"x\\ny\"]}", "{\"allowed_hosts\": \"one\"}",
	    "{\"max_reply_bytes\": 100}",	  "{\"request_timeout_s\": 0}",
	};
	struct config c;
	struct perr e = {0};
	char *path;
	size_t i;

	clear_env();
	ck_assert_int_eq(load(&c, &e, NULL), 0);
	ck_assert_int_eq(c.request_timeout_s, 10);
	ck_assert_uint_eq(c.max_reply_bytes, 4u << 20);
	ck_assert_int_eq(c.max_connections_per_ip, 64);
	ck_assert_uint_eq(c.nallowed_hosts, 0);
	ck_assert_uint_eq(c.backends[0].max_reply_bytes, 4u << 20);
	config_release(&c);
	path = write_file("{\"allowed_hosts\": [\"Parley.LAN\", \"box:8443\"], "
			  "\"allowed_origins\": [\"https://Dash.example\"], "
			  "\"max_reply_bytes\": 65536, \"request_timeout_s\": 3}");
	setenv("PARLEY_CONFIG", path, 1);
	ck_assert_int_eq(load(&c, &e, NULL), 0);
	ck_assert_uint_eq(c.nallowed_hosts, 2);
	ck_assert_str_eq(c.allowed_hosts[0], "parley.lan");
	ck_assert_str_eq(c.allowed_hosts[1], "box:8443");
	ck_assert_str_eq(c.allowed_origins[0], "https://dash.example");
	ck_assert_uint_eq(c.backends[0].max_reply_bytes, 65536);
	ck_assert_int_eq(c.request_timeout_s, 3);
	config_release(&c);
	free(path);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		path = write_file(bad[i]);
		setenv("PARLEY_CONFIG", path, 1);
		ck_assert_msg(load(&c, &e, NULL) == -1, "accepted %s", bad[i]);
		config_release(&c);
		free(path);
	}
	clear_env();
}
END_TEST

START_TEST(tokens_are_kept_hashed)
{
	struct config c;
	struct perr e = {0};

	clear_env();
	setenv("PARLEY_TOKEN", "a-token-of-twenty-chars", 1);
	ck_assert_int_eq(load(&c, &e, NULL), 0);
	ck_assert_uint_eq(c.ntokens, 1);
	ck_assert_uint_eq(strlen(c.tokens[0]), 64);
	ck_assert_ptr_null(strstr(c.tokens[0], "a-token"));
	config_release(&c);
	clear_env();
}
END_TEST

/* Loads a config file holding text; returns load()'s result, e.msg filled on error. */
static int load_text(struct config *c, struct perr *e, const char *text, char **path)
{
	int rc;

	clear_env();
	*path = write_file(text);
	setenv("PARLEY_CONFIG", *path, 1);
	memset(e, 0, sizeof(*e));
	rc = load(c, e, NULL);
	clear_env();
	return rc;
}

/* The file's error names the file, the key, what is wrong and what is expected. */
static void refused(const char *text, const char *const *parts)
{
	struct config c;
	struct perr e;
	char *path;

	ck_assert_int_eq(load_text(&c, &e, text, &path), -1);
	ck_assert_msg(strstr(e.msg, path) != NULL, "no file in: %s", e.msg);
	for (; *parts; parts++)
		ck_assert_msg(strstr(e.msg, *parts) != NULL, "'%s' not in: %s", *parts, e.msg);
	config_release(&c);
	free(path);
}

START_TEST(file_errors_say_which_what_and_what_is_expected)
{
	/* unknown, wrong type and out of range read differently */
	refused("{\"wrokers\": 3}",
		(const char *const[]){"unknown key 'wrokers'", "did you mean 'workers'?", NULL});
	refused("{\"colour\": 3}",
		(const char *const[]){"unknown key 'colour'", "parleyd --help", NULL});
	refused("{\"workers\": \"4\"}",
		(const char *const[]){"key 'workers' is a string",
				      "expected an integer from 1 to 256", NULL});
	refused("{\"workers\": 2.5}",
		(const char *const[]){"key 'workers' is the number 2.5",
				      "expected an integer from 1 to 256", NULL});
	refused("{\"workers\": 0}",
		(const char *const[]){"key 'workers' is 0, out of range",
				      "expected an integer from 1 to 256", NULL});
	refused("{\"drain_timeout_s\": -1}",
		(const char *const[]){"key 'drain_timeout_s' is -1, out of range", NULL});
	refused("{\"log_level\": \"loud\"}",
		(const char *const[]){"key 'log_level' is \"loud\"", "\"debug\"", NULL});
	refused("{\"synchronous\": \"OFF\"}",
		(const char *const[]){"key 'synchronous' is \"OFF\"", "\"NORMAL\"", NULL});
	refused("{\"listen\": 8080}",
		(const char *const[]){"key 'listen' is the number 8080", "HOST:PORT", NULL});
	refused("{\"listen\": \"nowhere\"}",
		(const char *const[]){"key 'listen' is \"nowhere\"", "HOST:PORT", NULL});
	refused("{\"tokens\": \"abc\"}",
		(const char *const[]){"key 'tokens' is a string", "an array", NULL});
	refused("{\"tokens\": [\"short\"]}",
		(const char *const[]){"tokens[0]", "16 characters", NULL});
	/* inside a backend: its place in the list, then the key */
	refused(
	    "{\"backends\": [{\"name\":\"a\",\"kind\":\"ollama\",\"url\":\"http://x\"},"
	    "{\"name\":\"b\",\"kind\":\"ollama\",\"urll\":\"http://y\"}]}",
	    (const char *const[]){"unknown key 'backends[1].urll'", "did you mean 'url'?", NULL});
	refused("{\"backends\": [{\"name\":\"a\",\"kind\":\"vllm\",\"url\":\"http://x\"}]}",
		(const char *const[]){"key 'backends[0].kind' is \"vllm\"",
				      "\"ollama\" or \"llama-server\"", NULL});
	refused("{\"backends\": [{\"name\":7,\"kind\":\"ollama\",\"url\":\"http://x\"}]}",
		(const char *const[]){"key 'backends[0].name' is the number 7", "a string", NULL});
	refused("{\"backends\": [{\"name\":\"a\",\"kind\":\"ollama\"}]}",
		(const char *const[]){"backends[0] has no 'url'", NULL});
	refused("{\"backends\": [{\"name\":\"a\",\"kind\":\"ollama\",\"url\":\"http://x\","
		"\"max_concurrency\":0}]}",
		(const char *const[]){"key 'backends[0].max_concurrency' is 0, out of range",
				      "from 1 to 1024", NULL});
	refused("{\"backends\": [\"ollama\"]}",
		(const char *const[]){"key 'backends[0]' is a string", "an object", NULL});
}
END_TEST

START_TEST(negative_timeouts_are_refused)
{
	static const char *const keys[] = {"connect_timeout_ms", "first_byte_timeout_ms",
					   "idle_timeout_ms", "total_timeout_ms"};
	char text[256], key[64];
	struct config c;
	struct perr e;
	char *path;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		snprintf(text, sizeof(text),
			 "{\"backends\": [{\"name\":\"a\",\"kind\":\"ollama\",\"url\":\"http://x\","
			 "\"%s\": -5}]}",
			 keys[i]);
		snprintf(key, sizeof(key), "key 'backends[0].%s' is -5, out of range", keys[i]);
		refused(text, (const char *const[]){key, "a timeout cannot be negative", NULL});
	}
	/* 0 still means the default */
	ck_assert_int_eq(load_text(&c, &e,
				   "{\"backends\": [{\"name\":\"a\",\"kind\":\"ollama\","
				   "\"url\":\"http://x\",\"idle_timeout_ms\": 0,"
				   "\"total_timeout_ms\": 5000}]}",
				   &path),
			 0);
	ck_assert_int_eq(c.backends[0].idle_timeout_ms, 0);
	ck_assert_int_eq(c.backends[0].total_timeout_ms, 5000);
	config_release(&c);
	free(path);
}
END_TEST

/* keep_alive as the file gives it, and as it is kept (NULL: refused). */
static void keep_alive_is(const char *given, const char *kept)
{
	char text[256];
	struct config c;
	struct perr e;
	char *path;
	int rc;

	snprintf(text, sizeof(text),
		 "{\"backends\": [{\"name\":\"a\",\"kind\":\"ollama\",\"url\":\"http://x\","
		 "\"keep_alive\": %s}]}",
		 given);
	rc = load_text(&c, &e, text, &path);
	if (kept) {
		ck_assert_msg(rc == 0, "%s: %s", given, e.msg);
		ck_assert_str_eq(c.backends[0].keep_alive, kept);
	} else {
		ck_assert_msg(rc == -1, "%s was accepted", given);
		ck_assert_msg(strstr(e.msg, "key 'backends[0].keep_alive'") &&
				  strstr(e.msg, "expected seconds as a number, -1"),
			      "%s: %s", given, e.msg);
	}
	config_release(&c);
	free(path);
}

START_TEST(keep_alive_takes_ollamas_forms)
{
	keep_alive_is("300", "300");
	keep_alive_is("-1", "-1");
	keep_alive_is("0", "0");
	keep_alive_is("2.5", "2500ms");
	keep_alive_is("-0.5", "-1");
	keep_alive_is("\"5m\"", "5m");
	keep_alive_is("\"1h30m\"", "1h30m");
	keep_alive_is("\"1.5h\"", "1.5h");
	keep_alive_is("\"300ms\"", "300ms");
	keep_alive_is("\"-1\"", "-1");
	keep_alive_is("\"-1m\"", "-1m");
	keep_alive_is("\"3600\"", "3600");
	keep_alive_is("\"0\"", "0");
	keep_alive_is("\"5 minutes\"", NULL);
	keep_alive_is("\"m5\"", NULL);
	keep_alive_is("\"1h30\"", NULL);
	keep_alive_is("\"\"", NULL);
	keep_alive_is("\"5d\"", NULL);
	keep_alive_is("true", NULL);
	keep_alive_is("[]", NULL);
}
END_TEST

/* A pool: url repeated in --backend and PARLEY_BACKENDS, "urls" in the file. */
START_TEST(pools_from_flags_env_and_file)
{
	const char *flags[] = {
	    "--backend", "name=p,kind=llama-server,url=a:1,url=http://b:2/,max_conversations=3",
	    NULL};
	struct config c;
	struct perr e = {0};
	char *path;

	clear_env();
	ck_assert_int_eq(load(&c, &e, flags), 0);
	ck_assert_int_eq(c.nbackends, 1);
	ck_assert_int_eq(c.backends[0].nurls, 2);
	ck_assert_str_eq(c.backends[0].url, "http://a:1");
	ck_assert_str_eq(c.backends[0].urls[1], "http://b:2");
	ck_assert_int_eq(c.backends[0].max_conversations, 3);
	config_release(&c);

	setenv("PARLEY_BACKENDS",
	       "name=o,kind=ollama,url=x:1,url=y:1;name=l,kind=llama-server,url=z:9", 1);
	ck_assert_int_eq(load(&c, &e, NULL), 0);
	ck_assert_int_eq(c.nbackends, 2);
	ck_assert_int_eq(c.backends[0].nurls, 2);
	ck_assert_int_eq(c.backends[1].nurls, 1);
	config_release(&c);
	clear_env();

	path = write_file("{\"backends\":[{\"name\":\"p\",\"kind\":\"llama-server\","
			  "\"urls\":[\"h1:1\",\"h2:2\",\"h3:3\"],\"max_conversations\":2}]}");
	setenv("PARLEY_CONFIG", path, 1);
	ck_assert_int_eq(load(&c, &e, NULL), 0);
	ck_assert_int_eq(c.backends[0].nurls, 3);
	ck_assert_str_eq(c.backends[0].url, "http://h1:1");
	ck_assert_str_eq(c.backends[0].urls[2], "http://h3:3");
	ck_assert_int_eq(c.backends[0].max_conversations, 2);
	config_release(&c);
	free(path);

	/* what is wrong, where, and what is expected */
	path = write_file("{\"backends\":[{\"name\":\"p\",\"kind\":\"llama-server\","
			  "\"urls\":[\"h1:1\",\"h1:1\"]}]}");
	setenv("PARLEY_CONFIG", path, 1);
	ck_assert_int_eq(load(&c, &e, NULL), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "backends[0].urls[1]"));
	ck_assert_ptr_nonnull(strstr(e.msg, "given twice"));
	config_release(&c);
	free(path);
	path = write_file("{\"backends\":[{\"name\":\"p\",\"kind\":\"llama-server\","
			  "\"urls\":\"h1:1\"}]}");
	setenv("PARLEY_CONFIG", path, 1);
	ck_assert_int_eq(load(&c, &e, NULL), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "key 'backends[0].urls' is a string; expected"));
	config_release(&c);
	free(path);
	clear_env();
	{
		const char *twice[] = {"--backend", "name=p,kind=ollama,url=a:1,url=a:1", NULL};
		const char *zero[] = {"--backend", "name=p,kind=ollama,url=a:1,max_conversations=0",
				      NULL};

		ck_assert_int_eq(load(&c, &e, twice), -1);
		ck_assert_ptr_nonnull(strstr(e.msg, "given twice"));
		config_release(&c);
		ck_assert_int_eq(load(&c, &e, zero), -1);
		ck_assert_ptr_nonnull(strstr(e.msg, "max_conversations must be 1 to 65536"));
		config_release(&c);
	}
}
END_TEST

START_TEST(help_lists_the_file_keys_and_h_works)
{
	static const char *const flags[][2] = {{"-h", NULL}, {"--help", NULL}};
	char out[512];
	struct config c;
	struct perr e = {0};
	FILE *f;
	char *text;
	size_t i;
	int saved;

	clear_env();
	snprintf(out, sizeof(out), "%s/help-%d.txt", harness_tmpdir(), (int)getpid());
	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		fflush(stdout);
		saved = dup(STDOUT_FILENO);
		f = fopen(out, "w");
		ck_assert_ptr_nonnull(f);
		dup2(fileno(f), STDOUT_FILENO);
		ck_assert_int_eq(load(&c, &e, flags[i]), 1);
		fflush(stdout);
		dup2(saved, STDOUT_FILENO);
		close(saved);
		fclose(f);
		config_release(&c);
		text = harness_slurp(out, NULL);
		ck_assert_ptr_nonnull(text);
		ck_assert_ptr_nonnull(strstr(text, "usage: parleyd"));
		/* keys that only the file sets */
		ck_assert_ptr_nonnull(strstr(text, "max_connections_per_ip"));
		ck_assert_ptr_nonnull(strstr(text, "retry_max_delay_ms"));
		ck_assert_ptr_nonnull(strstr(text, "synchronous"));
		ck_assert_ptr_nonnull(strstr(text, "first_byte_timeout_ms"));
		ck_assert_ptr_nonnull(strstr(text, "keep_alive"));
		ck_assert_ptr_nonnull(strstr(text, "num_ctx"));
		free(text);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, ollama_host_forms);
	tcase_add_test(tc, file_then_env_then_flags);
	tcase_add_test(tc, backend_flags_and_env);
	tcase_add_test(tc, bad_settings_are_refused);
	tcase_add_test(tc, tokens_are_kept_hashed);
	tcase_add_test(tc, file_errors_say_which_what_and_what_is_expected);
	tcase_add_test(tc, negative_timeouts_are_refused);
	tcase_add_test(tc, keep_alive_takes_ollamas_forms);
	tcase_add_test(tc, help_lists_the_file_keys_and_h_works);
	tcase_add_test(tc, hosts_origins_and_limits);
	tcase_add_test(tc, pools_from_flags_env_and_file);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
