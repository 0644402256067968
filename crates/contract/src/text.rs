//! Enums whose values are written as fixed texts: in events, in HTTP bodies, and in the
//! modules' SQL (see [`text_enum!`](crate::text_enum)).

#[doc(hidden)]
pub use serde as __serde;

/// Defines an enum each of whose values is written as a fixed text: `as_str`, `parse`,
/// `ALL` (every value it knows), `Display`, `FromStr`, and serde as that text (JSON shows
/// `"HELD"`, as `#[serde(rename_all = "SCREAMING_SNAKE_CASE")]` would).
///
/// A closed enum (every value listed) is `Copy`, refuses a text it does not know, and
/// gives each value's text as an SQL string literal too (`quoted`, a `const fn`), so that
/// a module writes its states into constant statements. An enum that ends with
/// `_ => Other(String)` is open: a text this build does not know — written by a newer
/// one — decodes to `Other` with the text as it was, and is written back the same.
///
/// ```
/// contract::text_enum! {
///     /// A light.
///     pub enum Light {
///         Red = "RED",
///         Green = "GREEN",
///     }
/// }
/// assert_eq!(Light::parse("RED"), Some(Light::Red));
/// assert_eq!(Light::Green.quoted(), "'GREEN'");
/// assert_eq!(serde_json::to_string(&Light::Green).unwrap(), r#""GREEN""#);
/// ```
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
            _ => Other(String) $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A text this build does not know (a newer build wrote it), as it was written.
            Other(String),
        }

        impl $name {
            /// Every value this build knows.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The text this value is written as.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }

            /// The value written as `text`: `Other` for a text this build does not know.
            pub fn parse(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Ok(Self::parse(text))
            }
        }

        $crate::text_enum!(@text $name [$($text),+]);
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The text this value is written as.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The text as an SQL string literal (`'TEXT'`), to write into a statement.
            pub const fn quoted(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!("'", $text, "'"),)+
                }
            }

            /// The value written as `text`, if there is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::text::UnknownText;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text).ok_or_else(|| $crate::text::UnknownText(text.to_owned()))
            }
        }

        $crate::text_enum!(@text $name [$($text),+]);
    };
    (@text $name:ident [$($text:literal),+]) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::text::__serde::Serialize for $name {
            fn serialize<S: $crate::text::__serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::text::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::text::__serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Text;
                impl $crate::text::__serde::de::Visitor<'_> for Text {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name)))
                    }
                    fn visit_str<E: $crate::text::__serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        text.parse().map_err(|_| E::unknown_variant(text, &[$($text),+]))
                    }
                }
                deserializer.deserialize_str(Text)
            }
        }
    };
}

/// A text that names no value of a closed [`text_enum!`](crate::text_enum).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownText(pub String);

#[cfg(test)]
mod tests {
    use crate::api::{OrderStatus, SeatStatus};

    /// The API's statuses are written as before (serde's `SCREAMING_SNAKE_CASE`), read
    /// back, and refused when unknown, with serde's words.
    #[test]
    fn closed_enums_round_trip_their_text_and_refuse_others() {
        for status in SeatStatus::ALL {
            let json = serde_json::to_string(status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<SeatStatus>(&json).unwrap(), *status);
            assert_eq!(SeatStatus::parse(status.as_str()), Some(*status));
            assert_eq!(status.quoted(), format!("'{status}'"));
        }
        let texts: Vec<&str> = SeatStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(texts, ["AVAILABLE", "HELD", "SOLD"]);
        let texts: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(texts, ["CREATED", "CONFIRMED", "CANCELLED"]);
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>().unwrap(), *status);
        }
        let error = serde_json::from_str::<OrderStatus>(r#""SHIPPED""#).unwrap_err().to_string();
        assert!(error.starts_with("unknown variant `SHIPPED`, expected one of `CREATED`, `CONFIRMED`"), "{error}");
        assert_eq!(SeatStatus::parse("held"), None);
        assert!("REFUNDED".parse::<OrderStatus>().is_err());
    }
}
