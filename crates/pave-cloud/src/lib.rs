//! The environment's cloud resource plan and its AWS driver.
//! Filled by the environments issue; empty until then.
