/*
 * check_html.c - a turn's Markdown as HTML: what a model writes as markup or
 * as a script link comes out as inert text; ordinary Markdown renders.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "api/html.h"

static char *render(const char *md)
{
	return html_render_markdown(md, strlen(md));
}

/* Fails when html contains needle (case-insensitive). */
static void assert_absent(const char *html, const char *needle)
{
	ck_assert_msg(strcasestr(html, needle) == NULL, "'%s' found in: %s", needle, html);
}

static void assert_present(const char *html, const char *needle)
{
	ck_assert_msg(strstr(html, needle) != NULL, "'%s' not found in: %s", needle, html);
}

START_TEST(test_script_block_is_text)
{
	char *h = render("Before\n\n<script>window.__pwned=1</script>\n\nAfter");

	assert_absent(h, "<script");
	assert_present(h, "&lt;script&gt;window.__pwned=1&lt;/script&gt;");
	assert_present(h, "<p>After</p>");
	free(h);
}
END_TEST

START_TEST(test_inline_script_is_text)
{
	char *h = render("Say <script>alert(1)</script> inline");

	assert_absent(h, "<script");
	assert_present(h, "Say &lt;script&gt;alert(1)&lt;/script&gt; inline");
	free(h);
}
END_TEST

START_TEST(test_img_onerror_is_text)
{
	char *h = render("<img src=x onerror=\"window.__pwned=1\">\n\nand inline <img src=y "
			 "onerror=alert(2)> too");

	assert_absent(h, "<img");
	assert_present(h, "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;");
	assert_present(h, "inline &lt;img src=y onerror=alert(2)&gt; too");
	free(h);
}
END_TEST

START_TEST(test_raw_html_blocks_are_text)
{
	char *h =
	    render("<div onclick=\"steal()\">\n<iframe src=\"https://evil.example\"></iframe>\n"
		   "</div>\n\n<style>body{display:none}</style>\n\n<!-- a comment -->\n\n"
		   "- item with <b onmouseover=x>bold</b>\n");

	assert_absent(h, "<div");
	assert_absent(h, "<iframe");
	assert_absent(h, "<style");
	assert_absent(h, "<!--");
	assert_absent(h, "<b ");
	assert_present(h, "&lt;div onclick=&quot;steal()&quot;&gt;");
	assert_present(h, "&lt;b onmouseover=x&gt;bold&lt;/b&gt;");
	free(h);
}
END_TEST

START_TEST(test_script_links_neutralised)
{
	static const char *const cases[] = {
	    "[x](javascript:window.__pwned=1)",
	    "[x](JavaScript:alert(1))",
	    "[x](vbscript:msgbox(1))",
	    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
	    "<javascript:alert(1)>",
	    "![i](javascript:alert(1))",
	    "[x][r]\n\n[r]: javascript:alert(1)",
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *h = render(cases[i]);
		/* the URL goes; the text of an autolink may stay, as text */
		assert_absent(h, "=\"javascript:");
		assert_absent(h, "=\"vbscript:");
		assert_absent(h, "=\"data:text");
		ck_assert_msg(strstr(h, "href=\"\"") || strstr(h, "src=\"\""), "no emptied URL: %s",
			      h);
		free(h);
	}
}
END_TEST

START_TEST(test_markdown_renders)
{
	char *h = render("# Plan\n\nThis is **bold** and *soft*.\n\n1. one\n2. two\n\n- a\n- b\n\n"
			 "```c\nint x = 1 < 2;\n```\n\nUse `top -b` and see "
			 "[the docs](https://example.com/a?b=1&c=2).\n");

	assert_present(h, "<h1>Plan</h1>");
	assert_present(h, "<strong>bold</strong>");
	assert_present(h, "<em>soft</em>");
	assert_present(h, "<ol>\n<li>one</li>");
	assert_present(h, "<ul>\n<li>a</li>");
	assert_present(h, "<pre><code class=\"language-c\">int x = 1 &lt; 2;\n</code></pre>");
	assert_present(h, "<code>top -b</code>");
	assert_present(h, "<a href=\"https://example.com/a?b=1&amp;c=2\">the docs</a>");
	free(h);
}
END_TEST

START_TEST(test_empty_and_bad_utf8)
{
	char *h = html_render_markdown(NULL, 0);

	ck_assert_str_eq(h, "");
	free(h);
	h = render("ok \xff\xfe end");
	assert_present(h, "ok \xef\xbf\xbd\xef\xbf\xbd end");
	free(h);
}
END_TEST

static Suite *html_suite(void)
{
	Suite *s = suite_create("html");
	TCase *tc = tcase_create("inert");

	tcase_add_test(tc, test_script_block_is_text);
	tcase_add_test(tc, test_inline_script_is_text);
	tcase_add_test(tc, test_img_onerror_is_text);
	tcase_add_test(tc, test_raw_html_blocks_are_text);
	tcase_add_test(tc, test_script_links_neutralised);
	suite_add_tcase(s, tc);
	tc = tcase_create("markdown");
	tcase_add_test(tc, test_markdown_renders);
	tcase_add_test(tc, test_empty_and_bad_utf8);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(html_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
