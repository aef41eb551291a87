//! Telegram Bot API emulator (in progress).
