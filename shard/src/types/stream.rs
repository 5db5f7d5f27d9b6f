//! The stream type. (Placeholder until its implementation lands.)

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {}

impl Stream {
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "unknown"
    }
}
