//! QR codes of room links, as SVG: the instructor projects one and students open the form with their phone's
//! camera instead of typing a URL.

use qrcode::QrCode;
use qrcode::render::svg;

/// An SVG QR code for `text`, or `None` if it is too long to encode (room links never are).
pub(crate) fn svg(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(320, 320)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build(),
    )
}

/// The same QR code as an `<svg>` element to embed in a page (no XML declaration), scaling to the size CSS gives
/// it.
pub(crate) fn svg_element(text: &str) -> Option<String> {
    let svg = svg(text)?;
    let start = svg.find("<svg")?;
    Some(svg[start..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_link_becomes_an_svg_qr_code() {
        let svg = svg("https://abc123.execute-api.ap-northeast-1.amazonaws.com/r/rust-101").expect("encodes");
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("#000000"), "dark modules drawn");
    }
}
