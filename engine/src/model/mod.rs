//! The data that flows between berth's stages: what was observed, the typed
//! actions a plan is made of, and the plan itself. Nothing here touches the
//! host.

pub mod action;
pub mod observed;
pub mod plan;
pub mod warning;
