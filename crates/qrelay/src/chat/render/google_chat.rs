//! Google Chat's text format: Chat markup (`*bold*`, `_italic_`, `~strike~`, `` ` ``, `<url|label>` links) or,
//! for apps set to it, Markdown (CommonMark: `[label](url)` links, `>` quotes) — Google's "Format messages".
//!
//! Mentions are `<users/{user}>` and `<users/all>`; links `<url|label>` or `[label](url)`. A zero-width space after
//! `<` and `]` breaks them, and after `@` and `#` as everywhere. The header is bold in Chat markup (`*…*`; italic in
//! Markdown). The limit is 32,000 bytes of UTF-8 (the message's `text`).

use super::{Budget, Parts, plain_nickname, push_header, push_quoted_with, push_zwsp_after};

const DEFUSE: &[char] = &['@', '#', '<', ']'];

pub(super) static BUDGET: Budget = Budget {
    limit: 32_000,
    unit: "bytes",
    size: str::len,
    render,
    worst_nickname_char: '@',
    // `@` and its zero-width space (1 + 3 bytes), or any 4-byte character (emoji).
    char_max: 4,
    // The newline and `> `.
    line_cost: 3,
};

fn render(parts: &Parts) -> String {
    let mut out = String::with_capacity(parts.text.len() * 2 + 96);
    let nickname = parts.nickname.as_deref().map(|n| {
        let mut plain = String::new();
        push_zwsp_after(&mut plain, &plain_nickname(n), DEFUSE);
        plain
    });
    push_header(&mut out, "*", nickname.as_deref(), &parts.when);
    push_quoted_with(&mut out, &parts.text, |out, line| push_zwsp_after(out, line, DEFUSE));
    out
}
