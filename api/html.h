/*
 * html.h - a turn's Markdown as HTML that is safe to put into a page.
 *
 * DESIGN: libcmark parses the Markdown (CommonMark); before rendering, every
 * raw HTML node becomes literal text (an HTML block a code block, inline HTML
 * a text run), so that what a model wrote as `<script>` or `<img onerror=…>`
 * shows as the characters it wrote and never as markup. The renderer runs in
 * cmark's safe mode, which also empties link and image URLs whose scheme is
 * javascript:, vbscript:, file: or data: (but for data: images). Pure
 * function of its input; any thread may call it.
 */
#ifndef PARLEY_HTML_H
#define PARLEY_HTML_H

#include <jansson.h>
#include <stddef.h>

/* The HTML for len bytes of Markdown md (invalid UTF-8 is replaced). New string; caller frees. */
char *html_render_markdown(const char *md, size_t len);
/* The same as a JSON string (new reference); md may be NULL (then ""). */
json_t *html_render_json(const char *md);

#endif
