/*
 * check_config.c - settings: file, then environment, then flags; bad ones
 * are refused with a message that says which and why.
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
	static const char *const vars[] = {"PARLEY_CONFIG", "PARLEY_LISTEN", "PARLEY_DB",
					   "PARLEY_WORKERS", "PARLEY_BACKENDS", "PARLEY_TOKEN",
					   "PARLEY_LOG_LEVEL", "OLLAMA_HOST", NULL};
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
	ck_assert_int_eq(c.workers, 7);        /* flag over env */
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
	const char *flags[] = {"--backend", "name=a,kind=ollama,url=127.0.0.1:11434",
			       "--backend", "name=b,kind=llama-server,url=http://h:1/,max_concurrency=2",
			       NULL};

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
	tcase_add_test(tc, hosts_origins_and_limits);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
