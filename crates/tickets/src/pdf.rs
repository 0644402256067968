//! A printable PDF of an order's tickets: a page per ticket (A4), with the show's title
//! and date, the seat and the QR code, the code's dark modules drawn as filled squares (no image, no font
//! embedded: the standard Helvetica).

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// What one page shows.
pub struct TicketPage {
    /// The show's title, its date and time, and the order's number.
    pub title: String,
    pub date: String,
    pub order: String,
    pub seat: String,
    pub status: String,
    pub ticket_id: String,
    pub qr: qrcode::QrCode,
}

const A4: (f32, f32) = (595.0, 842.0);
/// The QR code's side on paper, in points (about 7 cm).
const QR_SIDE: f32 = 200.0;

/// Text Helvetica's standard encoding shows as written: printable ASCII, else `?`.
fn latin(text: &str) -> Vec<u8> {
    text.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c as u8 } else { b'?' }).collect()
}

fn text(content: &mut Content, size: f32, (x, y): (f32, f32), line: &str) {
    let bytes = latin(line);
    content.begin_text();
    content.set_font(Name(b"F1"), size);
    content.next_line(x, y);
    content.show(Str(&bytes));
    content.end_text();
}

pub fn render(pages: &[TicketPage]) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font = Ref::new(3);
    let ids: Vec<(Ref, Ref)> = (0..pages.len() as i32).map(|i| (Ref::new(4 + 2 * i), Ref::new(5 + 2 * i))).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(ids.iter().map(|(page, _)| *page)).count(pages.len() as i32);
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    for (ticket, (page_id, content_id)) in pages.iter().zip(&ids) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, A4.0, A4.1));
        page.parent(tree);
        page.contents(*content_id);
        page.resources().fonts().pair(Name(b"F1"), font);
        page.finish();

        let mut content = Content::new();
        text(&mut content, 22.0, (60.0, 770.0), &ticket.title);
        text(&mut content, 14.0, (60.0, 748.0), &ticket.date);
        text(&mut content, 16.0, (60.0, 722.0), &ticket.seat);
        let line = format!("{}, ticket {}  ({})", ticket.order, ticket.ticket_id, ticket.status);
        text(&mut content, 10.0, (60.0, 702.0), &line);
        let width = ticket.qr.width();
        let module = QR_SIDE / width as f32;
        let (left, top) = ((A4.0 - QR_SIDE) / 2.0, 660.0);
        for (i, color) in ticket.qr.to_colors().iter().enumerate() {
            if *color == qrcode::Color::Dark {
                let (x, y) = ((i % width) as f32, (i / width) as f32);
                content.rect(left + x * module, top - (y + 1.0) * module, module, module);
            }
        }
        content.fill_nonzero();
        text(&mut content, 10.0, (60.0, 420.0), "Show this code at the door. It lets one person in, once.");
        pdf.stream(*content_id, &content.finish());
    }
    pdf.finish()
}
