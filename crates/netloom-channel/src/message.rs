//! Typed messages moving through a pipeline.
use std::any::{Any, type_name};
use std::fmt;

use bytes::Bytes;

/// A message in the pipeline: `Bytes` (the common case, never boxed) or any `Send` value.
///
/// Decoders turn `Bytes` into frames or your own types; handlers downcast to the type they
/// expect and pass everything else on.
///
/// ```
/// use bytes::Bytes;
/// use netloom_channel::Msg;
/// let m = Msg::new(Bytes::from_static(b"hi"));
/// assert_eq!(m.as_bytes().map(|b| &b[..]), Some(&b"hi"[..]));
/// let n = Msg::new(42u32);
/// assert_eq!(n.downcast::<u32>().ok(), Some(42));
/// ```
pub struct Msg(Repr);

enum Repr {
    Bytes(Bytes),
    Other {
        value: Box<dyn Any + Send>,
        type_name: &'static str,
    },
}

/// Moves `value` into a `U` if `T` and `U` are the same type, without allocating.
fn cast<T: 'static, U: 'static>(value: T) -> Result<U, T> {
    let mut slot = Some(value);
    let any: &mut dyn Any = &mut slot;
    if let Some(target) = any.downcast_mut::<Option<U>>()
        && let Some(u) = target.take()
    {
        return Ok(u);
    }
    match slot {
        Some(v) => Err(v),
        None => unreachable!("cast took the value but did not return it"),
    }
}

impl Msg {
    /// Wraps a value; `Bytes` is stored inline, anything else is boxed.
    ///
    /// ```
    /// use netloom_channel::Msg;
    /// let m = Msg::new(String::from("line"));
    /// assert!(m.is::<String>());
    /// ```
    pub fn new<T: Any + Send>(value: T) -> Msg {
        match cast::<T, Bytes>(value) {
            Ok(bytes) => Msg(Repr::Bytes(bytes)),
            Err(value) => Msg(Repr::Other {
                value: Box::new(value),
                type_name: type_name::<T>(),
            }),
        }
    }

    /// Whether the message holds a `T`.
    ///
    /// ```
    /// use netloom_channel::Msg;
    /// assert!(!Msg::new(1u8).is::<u16>());
    /// ```
    pub fn is<T: Any>(&self) -> bool {
        match &self.0 {
            Repr::Bytes(_) => std::any::TypeId::of::<T>() == std::any::TypeId::of::<Bytes>(),
            Repr::Other { value, .. } => (**value).is::<T>(),
        }
    }

    /// Takes the value out as a `T`, or gives the message back.
    ///
    /// ```
    /// use netloom_channel::Msg;
    /// let m = Msg::new(7i64);
    /// let m = m.downcast::<u8>().unwrap_err();
    /// assert_eq!(m.downcast::<i64>().ok(), Some(7));
    /// ```
    pub fn downcast<T: Any>(self) -> Result<T, Msg> {
        match self.0 {
            Repr::Bytes(b) => cast::<Bytes, T>(b).map_err(|b| Msg(Repr::Bytes(b))),
            Repr::Other { value, type_name } => match value.downcast::<T>() {
                Ok(v) => Ok(*v),
                Err(value) => Err(Msg(Repr::Other { value, type_name })),
            },
        }
    }

    /// Borrows the value as a `T`.
    ///
    /// ```
    /// use netloom_channel::Msg;
    /// assert_eq!(Msg::new(3u16).downcast_ref::<u16>(), Some(&3));
    /// ```
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        match &self.0 {
            Repr::Bytes(b) => (b as &dyn Any).downcast_ref::<T>(),
            Repr::Other { value, .. } => (**value).downcast_ref::<T>(),
        }
    }

    /// The bytes, if this is a `Bytes` message.
    ///
    /// ```
    /// use netloom_channel::Msg;
    /// assert!(Msg::new(1u8).as_bytes().is_none());
    /// ```
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.0 {
            Repr::Bytes(b) => Some(b),
            Repr::Other { .. } => None,
        }
    }

    /// The Rust type name of the value (for error messages).
    ///
    /// ```
    /// use netloom_channel::Msg;
    /// assert_eq!(Msg::new(1u8).type_name(), "u8");
    /// ```
    pub fn type_name(&self) -> &'static str {
        match &self.0 {
            Repr::Bytes(_) => type_name::<Bytes>(),
            Repr::Other { type_name, .. } => type_name,
        }
    }

    pub(crate) fn into_bytes(self) -> Result<Bytes, Msg> {
        match self.0 {
            Repr::Bytes(b) => Ok(b),
            other => Err(Msg(other)),
        }
    }
}

impl From<Bytes> for Msg {
    fn from(b: Bytes) -> Msg {
        Msg(Repr::Bytes(b))
    }
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Bytes(b) => f.debug_tuple("Msg").field(b).finish(),
            Repr::Other { type_name, .. } => write!(f, "Msg({type_name})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_without_boxing() {
        let m = Msg::new(Bytes::from_static(b"abc"));
        assert!(m.as_bytes().is_some());
        assert!(m.is::<Bytes>());
        assert_eq!(m.downcast::<Bytes>().ok(), Some(Bytes::from_static(b"abc")));
    }

    #[test]
    fn wrong_type_gives_message_back() {
        let m = Msg::new(Bytes::from_static(b"abc"));
        let m = m.downcast::<String>().unwrap_err();
        assert_eq!(m.type_name(), "bytes::bytes::Bytes");
    }
}
