//! Names that read as `keygate` without being it.

/// Look-alikes of `keygate`: invisible, combining, formatting and control
/// characters, full-width and mathematical letters, case and padding. A gate
/// protecting `keygate` must treat every one as `keygate`.
pub const LOOK_ALIKES: [&str; 15] = [
    "keygate\u{200b}",
    "\u{feff}keygate",
    "ｋｅｙｇａｔｅ",
    "keygate\0",
    "keygate\u{0301}",
    "kéygate",
    "KEYGATE",
    " keygate ",
    "key\u{200d}gate",
    "key\u{2060}gate",
    "keygate\u{00ad}",
    "keygate\n",
    "\u{202e}keygate",
    "keygate\u{fe0f}",
    "𝐤𝐞𝐲𝐠𝐚𝐭𝐞",
];
