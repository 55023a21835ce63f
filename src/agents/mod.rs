//! The coding agents Switchboard drives through their hooks: what each hook event means, once,
//! whether the hook is a command or an http hook (`claude_code`), and what attaching one writes
//! into its settings (`setup`, over order-keeping `json`).

pub mod agent;
pub mod claude_code;
pub mod json;
pub mod setup;
