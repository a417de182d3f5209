//! The languages the form speaks and how a request picks one, apart from what is said in each (`strings.rs`) so
//! that the request side (query, headers, the posted form) needs nothing but this.

use http::HeaderMap;

/// The languages the form speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Ja,
    En,
}

impl Lang {
    /// Every language, for tests that must cover them all.
    #[cfg(test)]
    pub(crate) const ALL: [Self; 2] = [Self::Ja, Self::En];

    /// `?lang=` wins; otherwise the first of Japanese or English in `Accept-Language` by preference; English when
    /// neither is listed.
    pub(crate) fn negotiate(query_lang: Option<&str>, headers: &HeaderMap) -> Self {
        if let Some(lang) = query_lang.and_then(Self::from_tag) {
            return lang;
        }
        let accept = headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut best: Option<(f32, Self)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Self::from_tag(tag) {
                if q > 0.0 && best.is_none_or(|(best_q, _)| q > best_q) {
                    best = Some((q, lang));
                }
            }
        }
        best.map_or(Self::En, |(_, lang)| lang)
    }

    /// `ja`, `ja-JP`, `en-US`, ... (case-insensitive).
    fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match primary.as_str() {
            "ja" => Some(Self::Ja),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The language tag, as in `<html lang>` and `?lang=`.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    /// The language the page's switch offers.
    pub(crate) fn other(self) -> Self {
        match self {
            Self::Ja => Self::En,
            Self::En => Self::Ja,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        let cases = [
            (None, "ja-JP,ja;q=0.9,en;q=0.8", Lang::Ja),
            (None, "en-US,en;q=0.9,ja;q=0.8", Lang::En),
            (None, "fr-FR, ja;q=0.5, en;q=0.4", Lang::Ja),
            (None, "de", Lang::En),
            (None, "", Lang::En),
            (None, "ja;q=0, en", Lang::En),
            (Some("ja"), "en", Lang::Ja),
            (Some("xx"), "ja", Lang::Ja),
        ];
        for (query, accept, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::ACCEPT_LANGUAGE, accept.parse().expect("header"));
            assert_eq!(
                Lang::negotiate(query, &headers),
                expected,
                "query {query:?}, Accept-Language {accept:?}"
            );
        }
    }
}
