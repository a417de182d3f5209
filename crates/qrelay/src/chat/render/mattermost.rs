//! Mattermost's Markdown (CommonMark with GitHub extensions).
//!
//! Mentions are `@name`, `@channel`, `@all`, `@here` (and group names), detected on the raw text; `~name` links a
//! channel; links are Markdown: inline `[x](url)`, images `![x](url)`, reference links `[x][r]` with a definition
//! `[r]: url` (Mattermost's "Formatting text" and "Mentions" docs). A zero-width space after `@`, `#`, `~`, `<` and
//! `]` breaks each of them. The limit is 16,383 characters (runes: the server's `PostMessageMaxRunesV2`, which
//! Mattermost client code quotes as "at most 16383 (multi-byte) characters").

use super::{Budget, Parts, chars, plain_nickname, push_header, push_quoted_with, push_zwsp_after};

const DEFUSE: &[char] = &['@', '#', '~', '<', ']'];

pub(super) static BUDGET: Budget = Budget {
    limit: 16_383,
    unit: "characters",
    size: chars,
    render,
    worst_nickname_char: '@',
    // `@` and its zero-width space.
    char_max: 2,
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
    push_header(&mut out, "**", nickname.as_deref(), &parts.when);
    push_quoted_with(&mut out, &parts.text, |out, line| push_zwsp_after(out, line, DEFUSE));
    out
}
