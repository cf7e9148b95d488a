/*
 * check_auth.c - with tokens configured nobody gets in without one: bearer
 * tokens (plain in the environment, hashed in the config file), the
 * dashboard's session cookie, and tokens never written to the log.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/sha256.h"
#include "tests/harness.h"

#define TOKEN "s3cret-token-for-tests-0123456789"

static struct proc parleyd;

static void start(const char *const *args)
{
	char db[512];

	snprintf(db, sizeof(db), "%s/auth-%d.db", harness_tmpdir(), (int)getpid());
	ck_assert_int_eq(harness_parleyd_start(&parleyd, db, args), 0);
}

static int get(const char *path, const char *header)
{
	const char *h[] = {header, NULL};

	return harness_http(parleyd.port, "GET", path, NULL, header ? h : NULL, NULL);
}

START_TEST(bearer_token_from_the_environment)
{
	char *log;

	setenv("PARLEY_TOKEN", TOKEN, 1);
	start(NULL);
	unsetenv("PARLEY_TOKEN");
	ck_assert_int_eq(get("/healthz", NULL), 200);
	ck_assert_int_eq(get("/v1/jobs", NULL), 401);
	ck_assert_ptr_nonnull(strstr(harness_last_headers(), "WWW-Authenticate: Bearer"));
	ck_assert_int_eq(get("/readyz", NULL), 401);
	ck_assert_int_eq(get("/v1/jobs", "Authorization: Bearer wrong-token-wrong-token"), 401);
	ck_assert_int_eq(get("/v1/jobs", "Authorization: Bearer " TOKEN), 200);
	ck_assert_int_eq(get("/v1/scenarios", "Authorization: bearer " TOKEN), 200);
	/* the dashboard's shell is public: it asks for the token itself */
	ck_assert_int_eq(get("/", NULL), 200);
	harness_stop(&parleyd, SIGTERM);
	log = harness_slurp(parleyd.log, NULL);
	ck_assert_ptr_nonnull(log);
	ck_assert_ptr_null(strstr(log, TOKEN));
	ck_assert_ptr_nonnull(strstr(log, "auth=on"));
	free(log);
}
END_TEST

START_TEST(hashed_token_in_the_config_file)
{
	char cfg[512], json[256], hex[65], *text;
	const char *args[] = {"--config", cfg, NULL};
	FILE *f;

	/* the config holds only the hash, as `parleyd --hash-token` prints it */
	sha256_hex(TOKEN, strlen(TOKEN), hex);
	snprintf(cfg, sizeof(cfg), "%s/auth-%d.json", harness_tmpdir(), (int)getpid());
	snprintf(json, sizeof(json), "{\"tokens\": [\"sha256:%s\"]}", hex);
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fputs(json, f);
	fclose(f);
	start(args);
	ck_assert_int_eq(get("/v1/jobs", "Authorization: Bearer " TOKEN), 200);
	ck_assert_int_eq(get("/v1/jobs", "Authorization: Bearer " TOKEN "x"), 401);
	harness_stop(&parleyd, SIGTERM);
	text = harness_slurp(parleyd.log, NULL);
	ck_assert_ptr_null(strstr(text, hex));
	free(text);
}
END_TEST

START_TEST(session_cookie_for_the_dashboard)
{
	const char *auth[] = {"Authorization: Bearer " TOKEN, NULL};
	char cookie[256], *p, *end;
	const char *with_cookie[3] = {cookie, NULL, NULL};
	static const char *const crafted[] = {"9223372036854775807",
					      "9223372036854775808",
					      "99999999999999999999999",
					      "-9223372036854775808",
					      "+1999999999",
					      " 1999999999",
					      "",
					      "18446744073709551615"};
	size_t i;

	setenv("PARLEY_TOKEN", TOKEN, 1);
	start(NULL);
	unsetenv("PARLEY_TOKEN");
	ck_assert_int_eq(harness_http(parleyd.port, "POST", "/v1/session", "", NULL, NULL), 401);
	ck_assert_int_eq(harness_http(parleyd.port, "POST", "/v1/session", "", auth, NULL), 200);
	p = strstr(harness_last_headers(), "Set-Cookie: parley_session=");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(strstr(p, "HttpOnly"));
	ck_assert_ptr_nonnull(strstr(p, "SameSite=Strict"));
	p += strlen("Set-Cookie: ");
	end = strchr(p, ';');
	snprintf(cookie, sizeof(cookie), "Cookie: %.*s", (int)(end - p), p);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/v1/jobs", NULL, with_cookie, NULL),
			 200);
	/* a forged cookie is refused */
	ck_assert_int_eq(get("/v1/jobs", "Cookie: parley_session=99999999999.00ff"), 401);
	/* and so are crafted expiries, each read with bounds (no overflow, no sign, no blank) */
	for (i = 0; i < sizeof(crafted) / sizeof(crafted[0]); i++) {
		char h[200];
		snprintf(h, sizeof(h), "Cookie: parley_session=%s.%064d", crafted[i], 0);
		int st = get("/v1/jobs", h);
		ck_assert_msg(st == 401, "cookie expiry '%s': status %d, want 401 (0: no answer)",
			      crafted[i], st);
	}
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/v1/jobs", NULL, with_cookie, NULL),
			 200);
	/* a state change with the cookie from another origin is refused */
	with_cookie[1] = "Origin: http://evil.example";
	ck_assert_int_eq(
	    harness_http(parleyd.port, "POST", "/v1/jobs/jx/cancel", "", with_cookie, NULL), 403);
	harness_stop(&parleyd, SIGTERM);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("tokens");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, bearer_token_from_the_environment);
	tcase_add_test(tc, hashed_token_in_the_config_file);
	tcase_add_test(tc, session_cookie_for_the_dashboard);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
