//! The scorecard engine: queries, properties and levels. Pure: no I/O.
//! Filled by the scorecard issue; empty until then.
