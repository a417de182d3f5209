//! Microsoft Teams: the text of an Adaptive Card's `TextBlock`s.
//!
//! A `TextBlock` reads a Markdown subset: `**bold**`, `_italic_`, lists, `[label](url)` links; no quotes, code or
//! headings, no HTML; a line break needs `\n\n` ("Format cards in Teams"). Mentions are `<at>name</at>` (shown as
//! text unless the card declares the entity, but defused anyway). A zero-width space after `@`, `#`, `<` and `]`
//! breaks them. Each line of the question is its own paragraph (`\n\n`, which the Teams adapter makes a
//! `TextBlock` each), led by a literal `> ` (Teams has no quote): nothing typed starts a line without it, and
//! empty lines are left out.
//!
//! The limit is Teams' 28 KB for the message with its card (28,672 bytes). The text is measured as the card
//! carries it: its bytes JSON-escaped, plus a margin of 64 bytes for each paragraph's `TextBlock` object and
//! 1024 bytes for the rest of the card.

use super::{Budget, Parts, plain_nickname, push_header, push_zwsp_after};

const DEFUSE: &[char] = &['@', '#', '<', ']'];
const PER_PARAGRAPH: usize = 64;
const CARD: usize = 1024;

pub(super) static BUDGET: Budget = Budget {
    limit: 28 * 1024,
    unit: "bytes of card (text JSON-escaped, with the card's margin)",
    size,
    render,
    worst_nickname_char: '@',
    // `@` and its zero-width space (1 + 3 bytes), or any 4-byte character (emoji); `"` and `\` escape to 2.
    char_max: 4,
    // `\n\n` escaped (4 bytes), `> ` and the paragraph's TextBlock.
    line_cost: 4 + 2 + PER_PARAGRAPH,
};

fn size(text: &str) -> usize {
    let escaped = serde_json::to_string(text).map_or(text.len() * 6, |json| json.len() - 2);
    let paragraphs = text.split("\n\n").filter(|p| !p.trim().is_empty()).count();
    escaped + paragraphs * PER_PARAGRAPH + CARD
}

fn render(parts: &Parts) -> String {
    let mut out = String::with_capacity(parts.text.len() * 2 + 96);
    let nickname = parts.nickname.as_deref().map(|n| {
        let mut plain = String::new();
        push_zwsp_after(&mut plain, &plain_nickname(n), DEFUSE);
        plain
    });
    push_header(&mut out, "**", nickname.as_deref(), &parts.when);
    for line in parts.text.split('\n').filter(|line| !line.trim().is_empty()) {
        out.push_str("\n\n> ");
        push_zwsp_after(&mut out, line, DEFUSE);
    }
    out
}
