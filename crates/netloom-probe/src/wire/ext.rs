//! ICMP extension structure (RFC 4884) and MPLS label stack objects (RFC 4950).
use super::{Malformed, be16, checksum, malformed};
use crate::MplsLabel;

/// Class-Num of the MPLS label stack object (RFC 4950).
pub const MPLS_CLASS: u8 = 1;
/// C-Type of the incoming MPLS label stack object (RFC 4950).
pub const MPLS_CTYPE: u8 = 1;

/// A view over an ICMP extension structure: a 4-byte header (version 2, checksum) then
/// objects. `new_checked` requires the header and version 2.
///
/// ```
/// use netloom_probe::wire::{ExtensionHeader, emit_extensions, MPLS_CLASS, MPLS_CTYPE};
/// let b = emit_extensions(&[(MPLS_CLASS, MPLS_CTYPE, &[0, 1, 0x41, 1][..])]);
/// let ext = ExtensionHeader::new_checked(&b[..]).unwrap();
/// assert!(ext.verify_checksum());
/// let obj = ext.objects().next().unwrap().unwrap();
/// assert_eq!(obj.mpls().unwrap().next().unwrap().label, 20);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ExtensionHeader<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> ExtensionHeader<T> {
    /// Validates and wraps `buf`.
    ///
    /// ```
    /// # use netloom_probe::wire::ExtensionHeader;
    /// assert!(ExtensionHeader::new_checked(&[0x10u8, 0, 0, 0][..]).is_err());
    /// ```
    pub fn new_checked(buf: T) -> Result<Self, Malformed> {
        let b = buf.as_ref();
        if b.len() < 4 {
            return malformed("ICMP extension header shorter than 4 bytes");
        }
        if b[0] >> 4 != 2 {
            return malformed("ICMP extension version is not 2");
        }
        Ok(ExtensionHeader { buf })
    }

    /// True if the checksum over the whole structure verifies.
    ///
    /// ```
    /// # use netloom_probe::wire::{ExtensionHeader, emit_extensions};
    /// let mut b = emit_extensions(&[(1, 1, &[0, 0, 1, 1][..])]);
    /// b[5] ^= 0xff;
    /// assert!(!ExtensionHeader::new_checked(&b[..]).unwrap().verify_checksum());
    /// ```
    pub fn verify_checksum(&self) -> bool {
        checksum(self.buf.as_ref()) == 0
    }

    /// The objects; iteration yields an error (then stops) at an object whose length is
    /// below 4 or runs past the end.
    ///
    /// ```
    /// # use netloom_probe::wire::{ExtensionHeader, emit_extensions};
    /// let b = emit_extensions(&[(1, 1, &[0, 0, 1, 1][..]), (2, 1, &[9; 4][..])]);
    /// assert_eq!(ExtensionHeader::new_checked(&b[..]).unwrap().objects().count(), 2);
    /// ```
    pub fn objects(&self) -> ExtensionObjects<'_> {
        ExtensionObjects {
            rest: &self.buf.as_ref()[4..],
        }
    }
}

/// Iterator over the objects of an extension structure.
///
/// ```
/// # use netloom_probe::wire::{ExtensionHeader, emit_extensions};
/// let b = emit_extensions(&[]);
/// assert!(ExtensionHeader::new_checked(&b[..]).unwrap().objects().next().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct ExtensionObjects<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ExtensionObjects<'a> {
    type Item = Result<ExtensionObject<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.rest = &[];
            return Some(malformed("ICMP extension object header truncated"));
        }
        let len = usize::from(be16(self.rest, 0));
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return Some(malformed("ICMP extension object length out of range"));
        }
        let (obj, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Ok(ExtensionObject { buf: obj }))
    }
}

/// One extension object: length, class-num, c-type, payload.
///
/// ```
/// # use netloom_probe::wire::{ExtensionHeader, emit_extensions};
/// let b = emit_extensions(&[(3, 4, &[1, 2, 3, 4][..])]);
/// let h = ExtensionHeader::new_checked(&b[..]).unwrap();
/// let o = h.objects().next().unwrap().unwrap();
/// assert_eq!((o.class_num(), o.c_type(), o.payload()), (3, 4, &[1u8, 2, 3, 4][..]));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ExtensionObject<'a> {
    buf: &'a [u8],
}

impl<'a> ExtensionObject<'a> {
    /// Class-Num.
    ///
    /// ```
    /// # use netloom_probe::wire::{ExtensionHeader, emit_extensions};
    /// # let b = emit_extensions(&[(3, 4, &[][..])]);
    /// # let h = ExtensionHeader::new_checked(&b[..]).unwrap();
    /// assert_eq!(h.objects().next().unwrap().unwrap().class_num(), 3);
    /// ```
    pub fn class_num(&self) -> u8 {
        self.buf[2]
    }

    /// C-Type.
    ///
    /// ```
    /// # use netloom_probe::wire::{ExtensionHeader, emit_extensions};
    /// # let b = emit_extensions(&[(3, 4, &[][..])]);
    /// # let h = ExtensionHeader::new_checked(&b[..]).unwrap();
    /// assert_eq!(h.objects().next().unwrap().unwrap().c_type(), 4);
    /// ```
    pub fn c_type(&self) -> u8 {
        self.buf[3]
    }

    /// Bytes after the 4-byte object header.
    ///
    /// ```
    /// # use netloom_probe::wire::{ExtensionHeader, emit_extensions};
    /// # let b = emit_extensions(&[(3, 4, &[5][..])]);
    /// # let h = ExtensionHeader::new_checked(&b[..]).unwrap();
    /// assert_eq!(h.objects().next().unwrap().unwrap().payload(), &[5]);
    /// ```
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[4..]
    }

    /// The MPLS label stack entries if this is an MPLS object (class 1, c-type 1).
    /// A trailing partial entry is ignored.
    ///
    /// ```
    /// # use netloom_probe::wire::{ExtensionHeader, emit_extensions};
    /// # let b = emit_extensions(&[(1, 1, &[0, 0, 0x10, 9, 0, 0, 0x21, 8][..])]);
    /// # let h = ExtensionHeader::new_checked(&b[..]).unwrap();
    /// let labels: Vec<_> = h.objects().next().unwrap().unwrap().mpls().unwrap().collect();
    /// assert_eq!((labels.len(), labels[1].label, labels[1].bottom_of_stack), (2, 2, true));
    /// ```
    pub fn mpls(&self) -> Option<MplsEntries<'a>> {
        (self.class_num() == MPLS_CLASS && self.c_type() == MPLS_CTYPE).then(|| MplsEntries {
            rest: self.payload(),
        })
    }
}

/// Iterator over the 4-byte entries of an MPLS label stack object.
///
/// ```
/// # use netloom_probe::wire::{ExtensionHeader, emit_extensions};
/// # let b = emit_extensions(&[(1, 1, &[0, 0, 0x11, 9][..])]);
/// # let h = ExtensionHeader::new_checked(&b[..]).unwrap();
/// let mut it = h.objects().next().unwrap().unwrap().mpls().unwrap();
/// assert_eq!(it.next().unwrap().ttl, 9);
/// assert!(it.next().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct MplsEntries<'a> {
    rest: &'a [u8],
}

impl Iterator for MplsEntries<'_> {
    type Item = MplsLabel;

    fn next(&mut self) -> Option<MplsLabel> {
        let (e, rest) = self.rest.split_first_chunk::<4>()?;
        self.rest = rest;
        Some(MplsLabel::from_entry(*e))
    }
}

/// Emits an extension structure (version 2, checksum) holding `(class, c-type, payload)`
/// objects.
///
/// ```
/// use netloom_probe::wire::emit_extensions;
/// assert_eq!(emit_extensions(&[(1, 1, &[0; 4][..])]).len(), 12);
/// ```
pub fn emit_extensions(objects: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let mut b = vec![0x20, 0, 0, 0];
    for (class, ctype, payload) in objects {
        let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&[*class, *ctype]);
        b.extend_from_slice(payload);
    }
    let c = checksum(&b);
    b[2..4].copy_from_slice(&c.to_be_bytes());
    b
}
