/*
 * html.c - Markdown to safe HTML with libcmark. See html.h.
 */
#include "api/html.h"

#include <cmark.h>
#include <stdlib.h>
#include <string.h>

#include "db/util.h"

/*
 * Replaces node by a node of type with the same literal text. Returns the
 * new node, or NULL when cmark refused (then the caller unlinks node).
 */
static cmark_node *replace_literal(cmark_node *node, cmark_node_type type)
{
	cmark_node *repl = cmark_node_new(type);
	const char *lit = cmark_node_get_literal(node);

	if (!repl)
		return NULL;
	cmark_node_set_literal(repl, lit ? lit : "");
	if (!cmark_node_replace(node, repl)) {
		cmark_node_free(repl);
		return NULL;
	}
	return repl;
}

/*
 * Raw HTML as literal text. Nodes are collected first and changed after the
 * walk: cmark's iterator must not see a node it stands on being freed.
 */
static void defuse_raw_html(cmark_node *doc)
{
	cmark_iter *it = cmark_iter_new(doc);
	cmark_node **found = NULL;
	size_t n = 0, cap = 0, i;
	cmark_event_type ev;

	while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
		cmark_node *node = cmark_iter_get_node(it);
		cmark_node_type t = cmark_node_get_type(node);

		if (ev != CMARK_EVENT_ENTER ||
		    (t != CMARK_NODE_HTML_BLOCK && t != CMARK_NODE_HTML_INLINE))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			found = xrealloc(found, cap * sizeof(*found));
		}
		found[n++] = node;
	}
	cmark_iter_free(it);
	for (i = 0; i < n; i++) {
		cmark_node_type t = cmark_node_get_type(found[i]);
		cmark_node_type to =
		    t == CMARK_NODE_HTML_BLOCK ? CMARK_NODE_CODE_BLOCK : CMARK_NODE_TEXT;

		if (!replace_literal(found[i], to))
			cmark_node_unlink(found[i]);
		cmark_node_free(found[i]);
	}
	free(found);
}

char *html_render_markdown(const char *md, size_t len)
{
	cmark_node *doc = cmark_parse_document(md ? md : "", md ? len : 0,
					       CMARK_OPT_SAFE | CMARK_OPT_VALIDATE_UTF8);
	char *html, *out;

	if (!doc)
		return xstrdup("");
	defuse_raw_html(doc);
	/* safe mode is cmark's default since 0.29; say it anyway for older ones */
	html = cmark_render_html(doc, CMARK_OPT_SAFE);
	cmark_node_free(doc);
	if (!html)
		return xstrdup("");
	/* cmark allocates with its own allocator: hand the caller a plain malloc'd copy */
	out = xstrdup(html);
	cmark_get_default_mem_allocator()->free(html);
	return out;
}

json_t *html_render_json(const char *md)
{
	char *html = html_render_markdown(md, md ? strlen(md) : 0);
	json_t *j = json_string(html);

	free(html);
	return j ? j : json_string("");
}
