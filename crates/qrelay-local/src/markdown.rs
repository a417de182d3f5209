//! The chat's rendering of qrelay's messages, for the board: the Markdown subset qrelay produces (`**bold**` in
//! the header, `> ` quote lines for the question) turned into HTML, and nothing else. Every character of the
//! text is escaped, so a question can't inject markup; the zero-width spaces that defuse mentions and links stay
//! in the text, invisible, as they do in the chat.

/// The message as HTML: a paragraph per run of plain lines, a `<blockquote>` per run of quote lines, `<strong>`
/// for `**bold**` within a line. Empty lines only separate blocks, as in the chat.
pub fn message_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut open: Option<Block> = None;
    for line in text.split('\n') {
        let (block, content) = match line.strip_prefix("> ") {
            Some(quoted) if !quoted.is_empty() => (Block::Quote, quoted),
            _ if line.is_empty() => {
                close(&mut out, open.take());
                continue;
            }
            _ => (Block::Plain, line),
        };
        if open == Some(block) {
            out.push_str("<br>\n");
        } else {
            close(&mut out, open.take());
            out.push_str(block.open());
            open = Some(block);
        }
        push_inline(&mut out, content);
    }
    close(&mut out, open);
    out
}

/// Escapes `text` for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Plain,
    Quote,
}

impl Block {
    fn open(self) -> &'static str {
        match self {
            Block::Plain => "<p>",
            Block::Quote => "<blockquote><p>",
        }
    }

    fn close(self) -> &'static str {
        match self {
            Block::Plain => "</p>",
            Block::Quote => "</p></blockquote>",
        }
    }
}

fn close(out: &mut String, block: Option<Block>) {
    if let Some(block) = block {
        out.push_str(block.close());
    }
}

/// One line: `**…**` pairs become `<strong>`, an unpaired `**` stays as written, everything is escaped.
fn push_inline(out: &mut String, line: &str) {
    let mut rest = line;
    while let Some(start) = rest.find("**") {
        let after = &rest[start + 2..];
        match after.find("**") {
            Some(end) if end > 0 => {
                push_escaped(out, &rest[..start]);
                out.push_str("<strong>");
                push_escaped(out, &after[..end]);
                out.push_str("</strong>");
                rest = &after[end + 2..];
            }
            _ => break,
        }
    }
    push_escaped(out, rest);
}

use qrelay::escape_html_into as push_escaped;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_bold_and_the_question_a_quote_block() {
        let text = "❓ **Anonymous question** · たろう · 2026-11-22 18:30 JST\n> ライフタイムとは？\n> 例: 'a";
        assert_eq!(
            message_html(text),
            "<p>❓ <strong>Anonymous question</strong> · たろう · 2026-11-22 18:30 JST</p>\
             <blockquote><p>ライフタイムとは？<br>\n例: &#39;a</p></blockquote>"
        );
    }

    #[test]
    fn html_in_a_question_is_shown_as_text() {
        let cases = [
            (
                "> <script>alert(1)</script>",
                "<blockquote><p>&lt;script&gt;alert(1)&lt;/script&gt;</p></blockquote>",
            ),
            (
                "> <img src=x onerror=alert(1)>",
                "<blockquote><p>&lt;img src=x onerror=alert(1)&gt;</p></blockquote>",
            ),
            (
                "> a & b \"c\"",
                "<blockquote><p>a &amp; b &quot;c&quot;</p></blockquote>",
            ),
            (
                "> **<b>x</b>**",
                "<blockquote><p><strong>&lt;b&gt;x&lt;/b&gt;</strong></p></blockquote>",
            ),
            ("> > nested", "<blockquote><p>&gt; nested</p></blockquote>"),
        ];
        for (text, expected) in cases {
            assert_eq!(message_html(text), expected, "{text:?}");
        }
    }

    #[test]
    fn zero_width_spaces_stay_and_break_nothing() {
        let text = "> @\u{200B}all see <\u{200B}https://evil.example|slides> [x]\u{200B}(https://evil.example)";
        assert_eq!(
            message_html(text),
            "<blockquote><p>@\u{200B}all see &lt;\u{200B}https://evil.example|slides&gt; \
             [x]\u{200B}(https://evil.example)</p></blockquote>"
        );
        assert_eq!(
            message_html("> **\u{200B}**"),
            "<blockquote><p><strong>\u{200B}</strong></p></blockquote>"
        );
    }

    #[test]
    fn unpaired_or_empty_bold_markers_stay_as_written() {
        let cases = [
            ("> 2 ** 3", "<blockquote><p>2 ** 3</p></blockquote>"),
            ("> a **** b", "<blockquote><p>a **** b</p></blockquote>"),
            (
                "> **a** and **b",
                "<blockquote><p><strong>a</strong> and **b</p></blockquote>",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(message_html(text), expected, "{text:?}");
        }
    }

    #[test]
    fn an_empty_line_separates_quote_blocks_and_a_bare_marker_is_plain_text() {
        assert_eq!(
            message_html("h\n> a\n\n> b"),
            "<p>h</p><blockquote><p>a</p></blockquote><blockquote><p>b</p></blockquote>"
        );
        assert_eq!(message_html("h\n>"), "<p>h<br>\n&gt;</p>");
        assert_eq!(message_html("h\n>x"), "<p>h<br>\n&gt;x</p>", "a quote needs the space");
    }
}
