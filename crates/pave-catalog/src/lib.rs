//! The software catalog graph: entity references, relations, cycles and impact.
//! Pure: no I/O. Filled by the catalog issue; empty until then.
