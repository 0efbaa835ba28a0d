//! A small server-sent events reader (the WHATWG event-stream format), for
//! the revocation feed. Bounded: a line longer than [`MAX_LINE`] is dropped.

/// Longest line kept, in bytes; the feed's entries are a few hundred.
const MAX_LINE: usize = 64 * 1024;

/// One dispatched event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

/// Turns chunks of bytes into events.
#[derive(Debug, Default)]
pub(crate) struct EventReader {
    line: Vec<u8>,
    overlong: bool,
    pending: Event,
    has_data: bool,
}

impl EventReader {
    /// Feeds bytes; returns the events they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                b'\n' => {
                    if !self.overlong {
                        let line = std::mem::take(&mut self.line);
                        self.line_done(&line, &mut out);
                    }
                    self.line.clear();
                    self.overlong = false;
                }
                // A CR ends the line too; the LF of a CRLF then ends an
                // empty one only if the CR did not: track by dropping CRs
                // at the end of the line instead.
                b'\r' => {}
                _ if self.line.len() >= MAX_LINE => self.overlong = true,
                _ => self.line.push(b),
            }
        }
        out
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data {
                out.push(std::mem::take(&mut self.pending));
            } else {
                self.pending = Event::default();
            }
            self.has_data = false;
            return;
        }
        if line.first() == Some(&b':') {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => self.pending.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.pending.data.push('\n');
                }
                self.pending.data.push_str(value);
                self.has_data = true;
            }
            "id" => self.pending.id = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_comments_are_skipped() {
        let mut reader = EventReader::default();
        let mut events = reader.push(b": keep-alive\n\nevent: revocation\nid: 7\nda");
        assert!(events.is_empty());
        events.extend(reader.push(b"ta: {\"seq\":7}\r\n\r\ndata: x\ndata: y\n\n"));
        assert_eq!(
            events,
            [
                Event {
                    event: "revocation".into(),
                    data: "{\"seq\":7}".into(),
                    id: Some("7".into())
                },
                Event {
                    event: String::new(),
                    data: "x\ny".into(),
                    id: None
                }
            ]
        );
    }

    #[test]
    fn overlong_lines_are_dropped() {
        let mut reader = EventReader::default();
        let mut input = b"data: ".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_LINE + 10));
        input.extend(b"\n\ndata: ok\n\n");
        let events = reader.push(&input);
        assert_eq!(events.len(), 1);
        assert_eq!(events.first().map(|e| e.data.as_str()), Some("ok"));
    }
}
