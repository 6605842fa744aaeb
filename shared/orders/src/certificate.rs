//! The retirement certificate and the order receipt: A4 pages in PDF (more when the serials do
//! not fit on one), laid out with `printpdf` ([`document`]) and set in DejaVu
//! Sans, embedded in the file (the `dejavu` crate ships the font; nothing is read from the
//! system, so a Lambda without fonts renders it the same).
//!
//! The certificate prints what the public record says, and the record's verification hash: a
//! reader checks a certificate by opening the record and comparing the two.
//!
//! printpdf subsets fonts only with its `text_layout` feature, which brings a layout engine this
//! certificate does not need; so the whole font is embedded (about 380 KB per certificate).

use std::sync::OnceLock;

use printpdf::{
    Color, Line, LinePoint, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rgb, TextItem,
};

use crate::retirements::{Retirement, vintage_text};

/// The font, parsed once per process.
fn font() -> &'static ParsedFont {
    static FONT: OnceLock<ParsedFont> = OnceLock::new();
    FONT.get_or_init(|| {
        ParsedFont::from_bytes(dejavu::sans::regular(), 0, &mut Vec::new())
            .expect("the embedded DejaVu Sans parses")
    })
}

/// Characters per line of the body text (10.5 pt DejaVu Sans over 170 mm, with margin).
const WRAP: usize = 88;

/// Splits `text` into lines of at most `width` characters, at spaces where it can.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word;
        while word.chars().count() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let cut = word
                .char_indices()
                .nth(width)
                .map_or(word.len(), |(i, _)| i);
            lines.push(word[..cut].to_owned());
            word = &word[cut..];
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The labelled rows the certificate prints, in order.
pub fn rows(retirement: &Retirement, record_path: &str) -> Vec<(&'static str, String)> {
    let r = retirement;
    let registry = match &r.registry_project_id {
        Some(id) => format!("{} {id}", r.standard),
        None => r.standard.to_string(),
    };
    let mut rows = vec![
        ("Quantity", format!("{} tCO2e", r.quantity)),
        ("Project", format!("{} ({})", r.project_name, r.project_id)),
        ("Registry", registry),
    ];
    if let Some(url) = &r.registry_url {
        rows.push(("Registry URL", url.clone()));
    }
    rows.push(("Vintage", vintage_text(&r.vintage)));
    // One row, each block on its own line.
    rows.push(("Serial numbers", r.serials.join("\n")));
    rows.push(("Beneficiary", r.beneficiary.clone()));
    if let Some(reason) = &r.reason {
        rows.push(("Reason", reason.clone()));
    }
    if let Some(at) = r.retired_at {
        rows.push(("Retired", at.format("%Y-%m-%d %H:%M:%S UTC").to_string()));
    }
    rows.push(("Retirement ID", r.retirement_id.clone()));
    rows.push(("Public record", record_path.to_owned()));
    rows
}

/// Renders the certificate of a retired retirement. `record_path` is where its public record is
/// read (`/v1/public/retirements/<id>`).
pub fn render(retirement: &Retirement, record_path: &str) -> Vec<u8> {
    document(&Document {
        title: format!("Retirement certificate {}", retirement.retirement_id),
        heading: "Certificate of Retirement",
        rows: rows(retirement, record_path),
        footer: Footer {
            label: "Verification hash (SHA-256 of the public record's claim)",
            value: retirement
                .verification_hash
                .as_deref()
                .unwrap_or("")
                .to_owned(),
            notice: "These credits are retired in the AmanarCarbon ledger and can never be sold, transferred or retired again.",
        },
    })
}

/// A document the platform prints: a heading, labelled rows, and a footer on every page.
pub struct Document {
    /// The PDF's title (its metadata).
    pub title: String,
    pub heading: &'static str,
    /// Label and value; a value's lines each start a new printed line.
    pub rows: Vec<(&'static str, String)>,
    pub footer: Footer,
}

/// What ends every page: a labelled value (a hash, a total) and a notice.
pub struct Footer {
    pub label: &'static str,
    pub value: String,
    pub notice: &'static str,
}

/// Lays a [`Document`] out on A4 pages, as many as its rows need, in embedded DejaVu Sans.
pub fn document(document: &Document) -> Vec<u8> {
    let mut doc = PdfDocument::new(&document.title);
    let font = PdfFontHandle::External(doc.add_font(font()));
    let green = Color::Rgb(Rgb::new(0.09, 0.40, 0.25, None));
    let black = Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None));
    let grey = Color::Rgb(Rgb::new(0.35, 0.35, 0.35, None));
    let at = |x: f32, y: f32| Point {
        x: Mm(x).into(),
        y: Mm(y).into(),
    };
    let text = |ops: &mut Vec<Op>, x: f32, y: f32, size: f32, color: &Color, line: &str| {
        ops.extend([
            Op::StartTextSection,
            Op::SetFillColor { col: color.clone() },
            Op::SetFont {
                font: font.clone(),
                size: Pt(size),
            },
            Op::SetTextCursor { pos: at(x, y) },
            Op::ShowText {
                items: vec![TextItem::Text(line.to_owned())],
            },
            Op::EndTextSection,
        ]);
    };
    let rule = |ops: &mut Vec<Op>, y: f32| {
        ops.extend([
            Op::SetOutlineColor { col: green.clone() },
            Op::SetOutlineThickness { pt: Pt(1.0) },
            Op::DrawLine {
                line: Line {
                    points: vec![
                        LinePoint {
                            p: at(20.0, y),
                            bezier: false,
                        },
                        LinePoint {
                            p: at(190.0, y),
                            bezier: false,
                        },
                    ],
                    is_closed: false,
                },
            },
        ]);
    };
    let footer = |ops: &mut Vec<Op>| {
        rule(ops, 40.0);
        text(ops, 20.0, 33.0, 9.0, &grey, document.footer.label);
        text(ops, 20.0, 27.0, 9.5, &black, &document.footer.value);
        text(ops, 20.0, 19.0, 8.0, &grey, document.footer.notice);
    };
    const LINE: f32 = 5.5;
    const BOTTOM: f32 = 48.0;
    let mut pages = Vec::new();
    let mut ops = Vec::new();
    text(&mut ops, 20.0, 272.0, 11.0, &green, "AmanarCarbon");
    text(&mut ops, 20.0, 258.0, 22.0, &black, document.heading);
    rule(&mut ops, 252.0);
    let mut y = 240.0;
    for (label, value) in &document.rows {
        let lines: Vec<String> = value.lines().flat_map(|l| wrap(l, WRAP)).collect();
        // A row goes whole onto a page; one taller than a page is split across pages.
        let height = LINE * (1 + lines.len()) as f32;
        if y - height < BOTTOM && y < 240.0 {
            footer(&mut ops);
            pages.push(PdfPage::new(Mm(210.0), Mm(297.0), std::mem::take(&mut ops)));
            y = 272.0;
        }
        text(&mut ops, 20.0, y, 9.0, &grey, label);
        y -= LINE;
        for line in lines {
            if y < BOTTOM {
                footer(&mut ops);
                pages.push(PdfPage::new(Mm(210.0), Mm(297.0), std::mem::take(&mut ops)));
                y = 272.0;
            }
            text(&mut ops, 20.0, y, 10.5, &black, &line);
            y -= LINE;
        }
        y -= 2.5;
    }
    footer(&mut ops);
    pages.push(PdfPage::new(Mm(210.0), Mm(297.0), ops));
    doc.with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_printed_and_many_serials_run_onto_more_pages_each_with_the_hash() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00.123Z")
            .unwrap()
            .to_utc();
        let retirement = Retirement {
            retirement_id: "ret_1".into(),
            owner: "USER#usr_1".into(),
            requested_by: "user:usr_1".into(),
            holding_id: "hld_1".into(),
            order_id: None,
            project_id: "prj_1".into(),
            project_name: "Highland forest".into(),
            issuance_id: "iss_1".into(),
            standard: amanar_marketplace::serial::Standard::Native,
            registry_project_id: None,
            registry_url: None,
            vintage: amanar_marketplace::serial::Vintage::Year(2023),
            quantity: 60,
            beneficiary: "B".repeat(200),
            reason: Some("reason ".repeat(28)),
            status: crate::retirements::RetirementStatus::Retired,
            serials: (0..60).map(|n| format!("AMC-iss_1-{n}-{n}")).collect(),
            retired_at: Some(at),
            verification_hash: Some("ab".repeat(32)),
            certificate_key: None,
            reason_failed: None,
            fingerprint: "f".into(),
            created_at: at,
            updated_at: at,
            version: 2,
        };
        let pdf = render(&retirement, "/v1/public/retirements/ret_1");
        let document = lopdf::Document::load_mem(&pdf).unwrap();
        let pages: Vec<u32> = document.get_pages().keys().copied().collect();
        assert!(pages.len() >= 2, "60 serial lines need a second page");
        let text = document.extract_text(&pages).unwrap();
        for serial in &retirement.serials {
            assert!(text.contains(serial.as_str()), "{serial} missing");
        }
        for expected in ["Public record", "Retirement ID", "ret_1", "Beneficiary"] {
            assert!(text.contains(expected), "{expected} missing");
        }
        assert_eq!(text.matches(&"ab".repeat(32)).count(), pages.len());
    }

    #[test]
    fn wrapping_keeps_words_and_cuts_only_what_cannot_fit() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(wrap("ünï çödé", 4), ["ünï", "çödé"]);
    }
}
