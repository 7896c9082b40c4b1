package catalog

import "testing"

func TestHTMLToText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text\nwith a line", "plain text\nwith a line"},
		{"Run:<br>docker exec -it app sh<br/>then<br />go", "Run:\ndocker exec -it app sh\nthen\ngo"},
		{"<p>First.</p><p>Second &amp; last.</p>", "First.\n\nSecond & last."},
		{"Log in:<ul><li>user: <b>admin</b></li><li>password: admin</li></ul>", "Log in:\n\n- user: admin\n- password: admin"},
		{`See <a href="https://example.com/docs" target="_blank">the docs</a>.`, "See the docs (https://example.com/docs)."},
		{`<a href="https://example.com">https://example.com</a>`, "https://example.com"},
		{`<a href="javascript:alert(1)">click</a>`, "click"},
		{`Default password: <code>changeme</code>`, "Default password: changeme"},
		{"<script>alert(1)</script>safe", "safe"},
		{"a  \t b", "a  \t b"}, // no HTML: untouched
		{"<i>a</i>   <i>b</i>", "a b"},
		{"unclosed <b>bold", "unclosed bold"},
		{"x &lt;y&gt;", "x <y>"},
	} {
		if got := htmlToText(tc.in); got != tc.want {
			t.Errorf("htmlToText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
