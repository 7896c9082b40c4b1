package catalog

import (
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// htmlToText turns the HTML of a template's description or note into the
// text its author meant: line breaks where <br>, <p>, <div>, <li> and
// headings were, list items as "- ", links as their text and URL, and
// everything else as its text. The result is plain text: the dashboard
// shows it as text, never as HTML.
func htmlToText(s string) string {
	if !strings.ContainsAny(s, "<&") {
		return s
	}
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(s))
	var href string // of the link being read
	var linkText strings.Builder
	inLink, skip := false, false
	write := func(text string) {
		if skip {
			return
		}
		if inLink {
			linkText.WriteString(text)
			return
		}
		b.WriteString(text)
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return tidyText(b.String())
		case html.TextToken:
			write(string(z.Text()))
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			end := tt == html.EndTagToken
			switch tag {
			case "script", "style":
				skip = !end && tt != html.SelfClosingTagToken
			case "br":
				write("\n")
			case "p", "div", "tr", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table":
				write("\n")
			case "li":
				if !end {
					write("\n- ")
				}
			case "a":
				if !end && tt != html.SelfClosingTagToken {
					href, inLink = "", true
					linkText.Reset()
					for hasAttr {
						var k, v []byte
						k, v, hasAttr = z.TagAttr()
						if string(k) == "href" {
							href = strings.TrimSpace(string(v))
						}
					}
				} else if end && inLink {
					inLink = false
					b.WriteString(linkString(strings.TrimSpace(linkText.String()), href))
				}
			}
		}
	}
}

// linkString is a link as text: its URL alone when the text is the URL
// (or empty), "text (URL)" otherwise; links that are not web or mail links
// (javascript:, relative) keep their text only.
func linkString(text, href string) string {
	lower := strings.ToLower(href)
	web := strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "mailto:")
	switch {
	case !web:
		return text
	case text == "" || text == href || strings.TrimSuffix(text, "/") == strings.TrimSuffix(href, "/"):
		return href
	}
	return text + " (" + href + ")"
}

var (
	spaceRunRE   = regexp.MustCompile(`[ \t\r\f\v]+`)
	blankLinesRE = regexp.MustCompile(`\n{3,}`)
)

// tidyText collapses runs of spaces (HTML ignores them), trims each line,
// and keeps at most one blank line in a row.
func tidyText(s string) string {
	lines := strings.Split(spaceRunRE.ReplaceAllString(s, " "), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.TrimSpace(blankLinesRE.ReplaceAllString(strings.Join(lines, "\n"), "\n\n"))
}
