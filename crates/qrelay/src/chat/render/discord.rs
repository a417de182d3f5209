//! Discord's Markdown.
//!
//! Mentions are `@everyone` and `@here` (plain text) and `<@id>`, `<@!id>`, `<@&role>`, `<#channel>`,
//! `</command:id>` (Discord's "Message Formatting" reference); links are masked links `[label](url)`. A zero-width
//! space after `@`, `#`, `<` and `]` breaks each of them (the adapters also send `allowed_mentions: {parse: []}`).
//! The limit is 2000 characters for `content`, counted in code points (Discord's API is Python 3: staff answer
//! in discord-api-docs issue #1315), so [`super::chars`]; [`super::Dialect::max_question_chars`] keeps 64 of them for the
//! adapter's `-# qrelay …` marker line.

use super::{Budget, Parts, chars, plain_nickname, push_header, push_quoted_with, push_zwsp_after};

const DEFUSE: &[char] = &['@', '#', '<', ']'];

pub(super) static BUDGET: Budget = Budget {
    limit: 2000,
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
