#!/usr/bin/env python3
"""Tests of module_cycles.py: each plants a small crate in a temporary
folder and runs the check on it, so the check is seen to fail on a cycle
and to pass where there is none."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "module_cycles.py")


def run_check(files):
    """Write `files` (relative path -> text) and check `src/lib.rs`."""
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            full = os.path.join(root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(textwrap.dedent(text))
        done = subprocess.run(
            [sys.executable, SCRIPT, os.path.join(root, "src", "lib.rs")],
            capture_output=True,
            text=True,
        )
        return done.returncode, done.stdout + done.stderr


class ModuleCycles(unittest.TestCase):
    def assert_cycle(self, files, *expected):
        code, out = run_check(files)
        self.assertEqual(code, 1, out)
        for text in expected:
            self.assertIn(text, out)

    def assert_acyclic(self, files):
        code, out = run_check(files)
        self.assertEqual(code, 0, out)
        self.assertIn("module cycles: none", out)

    def test_two_siblings_through_use_lines(self):
        self.assert_cycle(
            {
                "src/lib.rs": "pub mod a;\npub mod b;\n",
                "src/a.rs": "use crate::b::B;\npub struct A;\n",
                "src/b.rs": "use crate::a::A;\npub struct B;\n",
            },
            "crate::a -> crate::b",
            "crate::b -> crate::a",
        )

    def test_three_modules_through_groups_and_inline_paths(self):
        self.assert_cycle(
            {
                "src/lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
                "src/a.rs": "use crate::{b::{self, B}, c as _c};\n",
                "src/b.rs": "pub fn f() -> u8 { crate::c::C }\npub struct B;\n",
                "src/c.rs": "pub const C: u8 = 1;\nfn g() { let _ = crate::a::f; }\n",
            },
            "module cycle among 3 modules",
        )

    def test_crate_root_counts_as_a_module(self):
        self.assert_cycle(
            {
                "src/lib.rs": "mod a;\npub struct Root;\npub use a::A;\n",
                "src/a.rs": "use crate::Root;\npub struct A(Root);\n",
            },
            "crate -> crate::a",
            "crate::a -> crate ",
        )

    def test_child_and_parent_through_super(self):
        self.assert_cycle(
            {
                "src/lib.rs": "pub mod outer;\n",
                "src/outer/mod.rs": "mod inner;\npub struct Shared;\npub fn f() { inner::g() }\n",
                "src/outer/inner.rs": "use super::Shared;\npub fn g() {}\n",
            },
            "crate::outer -> crate::outer::inner",
        )

    def test_layers_that_import_downwards_pass(self):
        self.assert_acyclic(
            {
                "src/lib.rs": "pub mod api;\npub mod run;\n",
                "src/api/mod.rs": "//! crate::run is named in a comment only\npub mod policy;\npub mod request;\n",
                "src/api/policy.rs": "pub struct Policy;\nconst S: &str = \"crate::run::X\";\n",
                "src/api/request.rs": "use super::policy::Policy;\npub fn build(_: Policy) {}\n",
                "src/run.rs": "use crate::api::{policy::Policy, request};\npub fn go() { request::build(Policy) }\n",
            }
        )

    def test_test_modules_do_not_count(self):
        self.assert_acyclic(
            {
                "src/lib.rs": "pub mod a;\npub mod b;\n",
                "src/a.rs": "pub struct A;\n#[cfg(test)]\nmod tests;\n#[cfg(test)]\nuse crate::b::B;\n",
                "src/a/tests.rs": "use crate::b::B;\n",
                "src/b.rs": "use crate::a::A;\npub struct B;\n#[cfg(test)]\nmod inline {\n    use crate::b::B;\n}\n",
            }
        )

    def test_a_missing_module_file_is_an_error(self):
        code, out = run_check({"src/lib.rs": "mod gone;\n"})
        self.assertNotEqual(code, 0)
        self.assertIn("no file for `mod gone;`", out)


if __name__ == "__main__":
    unittest.main()
