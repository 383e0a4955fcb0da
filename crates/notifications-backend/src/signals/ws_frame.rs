//! WebSocket frames as a server sends them (RFC 6455, section 5.2: final, unmasked), encoded once
//! per event and written as they are to every connection.

use actix_web::web::Bytes;

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const FIN: u8 = 0x80;

/// A text frame of `payload`.
pub fn text(payload: &str) -> Bytes {
    frame(TEXT, &[payload.as_bytes()])
}

/// A close frame with `code` and `reason` (a control frame: at most 125 bytes, so the reason is
/// cut to 123).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    frame(CLOSE, &[&code.to_be_bytes(), reason[..end].as_bytes()])
}

fn frame(opcode: u8, parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 10);
    out.push(FIN | opcode);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_frames_with_each_length_form() {
        // RFC 6455, section 5.7: "A single-frame unmasked text message".
        assert_eq!(&text("Hello")[..], b"\x81\x05Hello");
        let medium = "x".repeat(256);
        let frame = text(&medium);
        assert_eq!(&frame[..4], b"\x81\x7e\x01\x00");
        assert_eq!(&frame[4..], medium.as_bytes());
        let large = "y".repeat(65_536);
        let frame = text(&large);
        assert_eq!(&frame[..10], b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00");
        assert_eq!(frame.len(), 10 + 65_536);
        assert_eq!(&text("x".repeat(125).as_str())[..2], b"\x81\x7d");
        assert_eq!(&text("x".repeat(126).as_str())[..4], b"\x81\x7e\x00\x7e");
    }

    #[test]
    fn close_frames_fit_a_control_frame() {
        assert_eq!(&close(1012, "bye")[..], b"\x88\x05\x03\xf4bye");
        let long = close(1013, &"é".repeat(100));
        assert_eq!(long[1] as usize, long.len() - 2);
        assert!(long.len() - 2 <= 125);
        assert!(
            std::str::from_utf8(&long[4..]).is_ok(),
            "cut on a character"
        );
    }
}
