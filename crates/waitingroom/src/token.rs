//! Admission tokens: issued here, checked by the reservation and order modules too, so
//! they live in `runtime::door::token`.

pub use runtime::door::token::*;
