//! Slack's mrkdwn.
//!
//! Mentions and links are all written in angle brackets: `<!channel>`, `<!here>`, `<!everyone>`, `<@U…>`,
//! `<#C…>`, `<!subteam^…>`, `<url|label>`; Slack asks for `&`, `<` and `>` in text to be escaped as `&amp;`,
//! `&lt;` and `&gt;` ("Formatting text for app surfaces": escaping text), which makes every one of them plain
//! text. The quote marker qrelay adds is a real `>`. A zero-width space after `@` and `#` also keeps plain
//! `@here` and `#general` from linking should a poster ever set `link_names` or `parse: full`. The limit is
//! 40,000 characters (`chat.postMessage`: text is truncated above it, Slack changelog 2018-04 "truncating really long
//! messages"; qrelay refuses instead). Counted after escaping, so an `&` is five.

use super::{Budget, Parts, ZWSP, chars, plain_nickname, push_header, push_quoted_with};

pub(super) static BUDGET: Budget = Budget {
    limit: 40_000,
    unit: "characters",
    size: chars,
    render,
    worst_nickname_char: '&',
    // `&` becomes `&amp;`.
    char_max: 5,
    // The newline and `> `.
    line_cost: 3,
};

fn escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' | '#' => {
                out.push(c);
                out.push(ZWSP);
            }
            _ => out.push(c),
        }
    }
}

fn render(parts: &Parts) -> String {
    let mut out = String::with_capacity(parts.text.len() * 2 + 96);
    let nickname = parts.nickname.as_deref().map(|n| {
        let mut plain = String::new();
        escaped(&mut plain, &plain_nickname(n));
        plain
    });
    push_header(&mut out, "*", nickname.as_deref(), &parts.when);
    push_quoted_with(&mut out, &parts.text, escaped);
    out
}
