//! The `select!` macro: parses crossbeam-channel's syntax into calls to the select engine
//! (`select.rs`).
//!
//! The parser is a token muncher. Each step consumes one arm and appends to three
//! accumulators: declarations (the arm's channel reference and arm object), the list of arms
//! handed to the engine, and an `if .. else` chain that runs the chosen arm's body. The arm
//! objects are all named `arm`, but each is created by a different expansion step, so macro
//! hygiene keeps them apart.

/// Waits on several channel operations at once and runs the body of the one that completes,
/// with crossbeam-channel's syntax and Go's semantics:
///
/// ```
/// use std::time::Duration;
/// use gonet::chan;
///
/// let (tx, rx) = chan::bounded::<i32>(1);
/// let (tx2, rx2) = chan::unbounded::<&str>();
/// tx2.send("hello").unwrap();
/// // Two arms are ready (`rx2` holds a value, `tx` has room): one of them runs.
/// let chosen = gonet::select! {
///     recv(rx) -> msg => panic!("rx is empty: {msg:?}"),
///     recv(rx2) -> msg => { assert_eq!(msg, Ok("hello")); "recv" }
///     send(tx, 7) -> res => { res.unwrap(); "send" }
///     default(Duration::from_secs(1)) => panic!("two arms were ready"),
/// };
/// // Only the chosen arm completed.
/// if chosen == "recv" {
///     assert!(rx.is_empty());
/// } else {
///     assert_eq!(rx.try_recv(), Ok(7));
///     assert_eq!(rx2.try_recv(), Ok("hello"));
/// }
/// ```
///
/// * `recv(r) -> msg => body` — receives from `r`; `msg` is `Result<T, RecvError>`, an error
///   once `r` is empty and disconnected (a disconnected channel is always ready).
/// * `send(s, value) -> res => body` — sends `value` on `s`; `res` is
///   `Result<(), SendError<T>>`, handing the value back if every receiver is gone.
/// * `default => body` — runs if no other arm is ready right now.
/// * `default(timeout) => body` — runs if no arm became ready within `timeout`.
///
/// When several arms are ready, one is chosen uniformly at random. Without a default arm the
/// select waits (parking the goroutine, or blocking a plain thread) until an arm completes;
/// with no arms at all it waits forever. As in Go, every `send` value is evaluated before
/// the select starts, and the values of the arms not chosen are dropped.
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__gonet_select!(@parse () () () () $($tokens)*)
    };
}

/// The parser behind [`select!`]: `@parse (declarations) (arms) (dispatch) (default) input`.
///
/// An arm is munched in two steps: its head (`recv(r) -> p =>`, `send(s, v) -> p =>`,
/// `default =>`, `default(t) =>`) and then its body with `@body`, which splits the body from
/// the rest of the input without a fragment followed by an optional comma (the source of the
/// "local ambiguity" errors): a brace group with a comma, a brace group without one, an
/// expression with a comma, or an expression ending the input — tried in this order, each
/// on literal tokens or a fragment followed by a literal.
#[doc(hidden)]
#[macro_export]
macro_rules! __gonet_select {
    // recv(r) -> pat => body
    (@parse ($($decl:tt)*) ($($list:tt)*) ($($disp:tt)*) ($($def:tt)*)
        recv($r:expr $(,)?) -> $p:pat => $($rest:tt)*) => {
        $crate::__gonet_select!(@body (@recv ($($decl)*) ($($list)*) ($($disp)*) ($($def)*)
            ($r) ($p)) $($rest)*)
    };

    // send(s, value) -> pat => body
    (@parse ($($decl:tt)*) ($($list:tt)*) ($($disp:tt)*) ($($def:tt)*)
        send($s:expr, $v:expr $(,)?) -> $p:pat => $($rest:tt)*) => {
        $crate::__gonet_select!(@body (@send ($($decl)*) ($($list)*) ($($disp)*) ($($def)*)
            ($s) ($v) ($p)) $($rest)*)
    };

    // default => body, default(timeout) => body
    (@parse ($($decl:tt)*) ($($list:tt)*) ($($disp:tt)*) ()
        default => $($rest:tt)*) => {
        $crate::__gonet_select!(@body (@default ($($decl)*) ($($list)*) ($($disp)*)
            ($crate::chan::__private::Otherwise::Now)) $($rest)*)
    };
    (@parse ($($decl:tt)*) ($($list:tt)*) ($($disp:tt)*) ()
        default($t:expr $(,)?) => $($rest:tt)*) => {
        $crate::__gonet_select!(@body (@default ($($decl)*) ($($list)*) ($($disp)*)
            ($crate::chan::__private::Otherwise::Timeout($t))) $($rest)*)
    };
    (@parse ($($decl:tt)*) ($($list:tt)*) ($($disp:tt)*) ($($def:tt)+) default $($rest:tt)*) => {
        ::core::compile_error!("gonet::select!: more than one `default` arm")
    };

    // End of input: emit the select.
    (@parse ($($decl:tt)*) ($($list:tt)*) ($($disp:tt)*) ()) => {{
        $($decl)*
        $crate::chan::__private::select(
            &mut [$($list)*],
            $crate::chan::__private::Otherwise::Block,
        );
        $($disp)* { ::core::unreachable!("gonet::select!: no arm was chosen") }
    }};
    (@parse ($($decl:tt)*) ($($list:tt)*) ($($disp:tt)*) (($($o:tt)*) ($($body:tt)*))) => {{
        $($decl)*
        $crate::chan::__private::select(&mut [$($list)*], $($o)*);
        $($disp)* { $($body)* }
    }};

    (@parse ($($decl:tt)*) ($($list:tt)*) ($($disp:tt)*) ($($def:tt)*) $($rest:tt)+) => {
        ::core::compile_error!(::core::concat!(
            "gonet::select!: expected `recv(r) -> msg => body`, `send(s, value) -> res => body`, ",
            "`default => body` or `default(timeout) => body`, found: ",
            ::core::stringify!($($rest)+)
        ))
    };

    // Splits an arm's body from the rest of the input, then continues with `(@step ..)`
    // followed by `(body)` and the rest.
    (@body (@$step:ident $($args:tt)*) { $($b:tt)* } , $($rest:tt)*) => {
        $crate::__gonet_select!(@$step $($args)* ({ $($b)* }) $($rest)*)
    };
    (@body (@$step:ident $($args:tt)*) { $($b:tt)* } $($rest:tt)*) => {
        $crate::__gonet_select!(@$step $($args)* ({ $($b)* }) $($rest)*)
    };
    (@body (@$step:ident $($args:tt)*) $body:expr , $($rest:tt)*) => {
        $crate::__gonet_select!(@$step $($args)* ($body) $($rest)*)
    };
    (@body (@$step:ident $($args:tt)*) $body:expr) => {
        $crate::__gonet_select!(@$step $($args)* ($body))
    };
    (@body (@$step:ident $($args:tt)*) $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "gonet::select!: expected an arm body (`{ .. }` or an expression followed by `,`), ",
            "found: ",
            ::core::stringify!($($rest)*)
        ))
    };

    // The default arm, kept aside until the end of the input.
    (@default ($($decl:tt)*) ($($list:tt)*) ($($disp:tt)*) ($($o:tt)*) ($body:tt)
        $($rest:tt)*) => {
        $crate::__gonet_select!(@parse ($($decl)*) ($($list)*) ($($disp)*)
            (($($o)*) ($body)) $($rest)*)
    };

    // One arm, appended to the accumulators. `rx`/`tx` and `arm` are fresh names per step.
    (@recv ($($decl:tt)*) ($($list:tt)*) ($($disp:tt)*) ($($def:tt)*)
        ($r:expr) ($p:pat) ($body:tt) $($rest:tt)*) => {
        $crate::__gonet_select!(@parse
            (
                $($decl)*
                let rx: &$crate::chan::Receiver<_> = &$r;
                let mut arm = $crate::chan::__private::RecvArm::new(rx);
            )
            ($($list)* arm.as_arm(),)
            ($($disp)* if arm.is_selected() { let $p = arm.take(); $body } else)
            ($($def)*)
            $($rest)*)
    };
    (@send ($($decl:tt)*) ($($list:tt)*) ($($disp:tt)*) ($($def:tt)*)
        ($s:expr) ($v:expr) ($p:pat) ($body:tt) $($rest:tt)*) => {
        $crate::__gonet_select!(@parse
            (
                $($decl)*
                let tx: &$crate::chan::Sender<_> = &$s;
                let mut arm = $crate::chan::__private::SendArm::new(tx, $v);
            )
            ($($list)* arm.as_arm(),)
            ($($disp)* if arm.is_selected() { let $p = arm.take(); $body } else)
            ($($def)*)
            $($rest)*)
    };
}
