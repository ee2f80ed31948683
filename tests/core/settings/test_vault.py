"""The vault file: round trips, every tamper case, wrong keys, permissions, rotation, atomic writes."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.settings.vault import (
    MAGIC,
    InvalidSecretName,
    InvalidSecretValue,
    Passphrase,
    RawKey,
    ScryptParams,
    SecretNotFound,
    Vault,
    VaultConflict,
    VaultCorrupt,
    VaultExists,
    VaultNotFound,
    VaultPermissionError,
    VaultTampered,
    VaultTruncated,
    WeakPassphrase,
    WrongKey,
    validate_name,
)

FAST = ScryptParams(log2_n=14)
PASS = Passphrase("correct horse battery staple")
SECRETS = {"kraken.api_key": "AKIA-kraken-key-0001", "kraken.api_secret": "c2VjcmV0LXNlY3JldC0w"}

# Offsets from the documented layout (core/settings/vault.py, docs/security.md).
PREAMBLE = 18
KDF_FIELDS = 20
VAULT_ID = 16
KEY_CHECK = 12 + 32
SEAL = 28
CHECKSUM = 32


def entries_of(data: bytes) -> list[tuple[str, int, int]]:
    """(name, start of the entry record, end of the entry record) for each entry."""
    pos = PREAMBLE + KDF_FIELDS + VAULT_ID + KEY_CHECK
    (count,) = struct.unpack_from(">H", data, pos)
    pos += 2
    out = []
    for _ in range(count):
        start = pos
        name_len = data[pos]
        name = data[pos + 1 : pos + 1 + name_len].decode()
        pos += 1 + name_len + 12
        (ct_len,) = struct.unpack_from(">I", data, pos)
        pos += 4 + ct_len
        out.append((name, start, pos))
    return out


def ciphertext_span(data: bytes, name: str) -> tuple[int, int]:
    """(start, end) of the nonce + length + ciphertext of one entry."""
    for entry_name, start, end in entries_of(data):
        if entry_name == name:
            return start + 1 + len(name), end
    raise AssertionError(name)


def reframe(data: bytes) -> bytes:
    """What a careful attacker does after editing: fix the length, header check and trailing SHA-256."""
    body = data[PREAMBLE:-CHECKSUM]
    head = MAGIC + data[8:10] + struct.pack(">I", len(body))
    out = head + hashlib.sha256(head).digest()[:4] + body
    return out + hashlib.sha256(out).digest()


def make(path: Path, credential: Passphrase | RawKey, values: dict[str, str] | None = None) -> Vault:
    return Vault.create(path, credential, scrypt=FAST, values=SECRETS if values is None else values)


@pytest.fixture
def key() -> RawKey:
    return RawKey.generate()


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "vault.bin"


def assert_no_values(exc: BaseException, values: dict[str, str] = SECRETS) -> None:
    for value in values.values():
        assert value not in str(exc)


# --- round trips -------------------------------------------------------------------------------


def test_round_trip_with_passphrase(vault_path: Path) -> None:
    make(vault_path, PASS)
    vault = Vault.open(vault_path, Passphrase("correct horse battery staple"))
    assert vault.names() == sorted(SECRETS)
    assert {name: vault.get(name) for name in vault.names()} == SECRETS
    assert vault.kdf_description == "scrypt n=2^14 r=8 p=1"


def test_round_trip_with_raw_key_and_unicode(vault_path: Path, key: RawKey) -> None:
    values = {"telegram.bot_token": "12345:äöü-€-🔑", "discord.token": "x" * 5000}
    make(vault_path, key, values)
    vault = Vault.open(vault_path, RawKey.parse(key.encode()))
    assert {name: vault.get(name) for name in vault.names()} == values
    assert vault.kdf_description == "raw 256-bit key"


_name = st.from_regex(r"[a-z0-9]{1,8}(_[a-z0-9]{1,8})?(\.[a-z0-9]{1,8}){0,2}", fullmatch=True).filter(
    lambda n: not n.endswith("_file")
)
_value = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=200)


@settings(max_examples=25, deadline=None)
@given(values=st.dictionaries(_name, _value, min_size=1, max_size=6))
def test_any_names_and_values_round_trip(values: dict[str, str]) -> None:
    key = RawKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.bin"
        Vault.create(path, key, values=values)
        reopened = Vault.open(path, key)
        assert {name: reopened.get(name) for name in reopened.names()} == values


def test_set_replace_delete_persist(vault_path: Path, key: RawKey) -> None:
    vault = make(vault_path, key)
    vault.set("telegram.bot_token", "111111:telegram")
    vault.set("kraken.api_key", "replaced-key-value")
    vault.delete("kraken.api_secret")
    reopened = Vault.open(vault_path, key)
    assert reopened.names() == ["kraken.api_key", "telegram.bot_token"]
    assert reopened.get("kraken.api_key") == "replaced-key-value"
    with pytest.raises(SecretNotFound, match=r"kraken\.api_secret"):
        reopened.get("kraken.api_secret")
    with pytest.raises(SecretNotFound):
        reopened.delete("kraken.api_secret")


def test_every_encryption_uses_a_fresh_nonce(vault_path: Path, key: RawKey) -> None:
    vault = make(vault_path, key, {"a.secret": "same value"})
    nonces: list[bytes] = []
    for _ in range(20):
        vault.set("a.secret", "same value")
        data = vault_path.read_bytes()
        check_at = PREAMBLE + KDF_FIELDS + VAULT_ID
        nonces.append(data[check_at : check_at + 12])
        start, _end = ciphertext_span(data, "a.secret")
        nonces.append(data[start : start + 12])
        nonces.append(data[-CHECKSUM - SEAL : -CHECKSUM - 16])
    assert len(set(nonces)) == len(nonces)


# --- file mode and atomic writes ----------------------------------------------------------------


def test_new_vault_is_mode_0600_whatever_the_umask(vault_path: Path, key: RawKey) -> None:
    old = os.umask(0)
    try:
        vault = make(vault_path, key)
        vault.set("telegram.bot_token", "111111:telegram")
    finally:
        os.umask(old)
    assert stat.S_IMODE(vault_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(vault_path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666])
def test_group_or_world_accessible_vault_is_refused(vault_path: Path, key: RawKey, mode: int) -> None:
    make(vault_path, key)
    vault_path.chmod(mode)
    with pytest.raises(VaultPermissionError, match=f"chmod 600 {vault_path}") as err:
        Vault.open(vault_path, key)
    assert f"{mode:04o}" in str(err.value)


def test_writes_replace_the_file_and_leave_no_temporaries(vault_path: Path, key: RawKey) -> None:
    vault = make(vault_path, key)
    with vault_path.open("rb") as before:
        inode = os.fstat(before.fileno()).st_ino
        old_bytes = vault_path.read_bytes()
        vault.set("telegram.bot_token", "111111:telegram")
        vault.rotate(RawKey.generate())
        # A reader that had the old file open still sees the complete old file.
        assert before.read() == old_bytes
    assert vault_path.stat().st_ino != inode
    assert os.listdir(vault_path.parent) == ["vault.bin"]


def test_writes_follow_a_symlink_to_the_real_file(tmp_path: Path, key: RawKey) -> None:
    real = tmp_path / "real" / "vault.bin"
    make(real, key)
    link = tmp_path / "vault.bin"
    link.symlink_to(real)
    Vault.open(link, key).set("telegram.bot_token", "111111:telegram")
    assert link.is_symlink()
    assert "telegram.bot_token" in Vault.open(real, key)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own a file for another user")
def test_root_rewriting_a_vault_keeps_its_owner(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)
    os.chown(vault_path, 4321, 4321)
    Vault.open(vault_path, key).set("telegram.bot_token", "111111:telegram")
    st_after = vault_path.stat()
    assert (st_after.st_uid, st_after.st_gid) == (4321, 4321)


def test_create_never_overwrites(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)
    before = vault_path.read_bytes()
    with pytest.raises(VaultExists):
        make(vault_path, RawKey.generate())
    assert vault_path.read_bytes() == before


def test_a_change_by_another_process_is_not_overwritten(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)
    first, second = Vault.open(vault_path, key), Vault.open(vault_path, key)
    first.set("telegram.bot_token", "111111:telegram")
    with pytest.raises(VaultConflict, match="open it again"):
        second.set("discord.token", "discord-token-value")
    assert Vault.open(vault_path, key).names() == sorted([*SECRETS, "telegram.bot_token"])


# --- wrong credentials ---------------------------------------------------------------------------


def test_wrong_passphrase_is_its_own_error(vault_path: Path) -> None:
    make(vault_path, PASS)
    with pytest.raises(WrongKey, match="wrong passphrase") as err:
        Vault.open(vault_path, Passphrase("correct horse battery stapler"))
    assert not isinstance(err.value, VaultTampered)
    assert_no_values(err.value)


def test_wrong_raw_key(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)
    with pytest.raises(WrongKey, match="wrong key"):
        Vault.open(vault_path, RawKey.generate())


def test_credential_of_the_other_kind_is_named(vault_path: Path, tmp_path: Path, key: RawKey) -> None:
    make(vault_path, PASS)
    with pytest.raises(WrongKey, match="locked with a passphrase"):
        Vault.open(vault_path, key)
    other = tmp_path / "raw.bin"
    make(other, key)
    with pytest.raises(WrongKey, match="locked with a raw key"):
        Vault.open(other, PASS)


# --- tampering, truncation, wrong files -------------------------------------------------------------


def test_any_flipped_byte_is_detected(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)
    data = vault_path.read_bytes()
    for offset in range(len(data)):
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        vault_path.write_bytes(bytes(flipped))
        expected = VaultCorrupt if offset < len(MAGIC) else VaultTampered
        with pytest.raises(expected) as err:
            Vault.open(vault_path, key)
        assert_no_values(err.value)
        if offset < len(MAGIC):
            assert "not a tradectl vault" in str(err.value)


def test_flipped_bytes_in_a_passphrase_header_are_tampering_not_a_wrong_passphrase(vault_path: Path) -> None:
    make(vault_path, PASS)
    data = vault_path.read_bytes()
    salt_at = PREAMBLE + 4
    check_at = PREAMBLE + KDF_FIELDS + VAULT_ID
    for offset in (PREAMBLE + 1, salt_at, check_at, check_at + 20):
        flipped = bytearray(data)
        flipped[offset] ^= 0x80
        vault_path.write_bytes(bytes(flipped))
        with pytest.raises(VaultTampered, match="checksum"):
            Vault.open(vault_path, PASS)


def test_truncated_at_any_length(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)
    data = vault_path.read_bytes()
    for length in range(len(data)):
        vault_path.write_bytes(data[:length])
        with pytest.raises(VaultTruncated) as err:
            Vault.open(vault_path, key)
        assert "truncated" in str(err.value) or "empty" in str(err.value)


def test_appended_bytes_are_tampering(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)
    vault_path.write_bytes(vault_path.read_bytes() + b"\n")
    with pytest.raises(VaultTampered, match="after the end"):
        Vault.open(vault_path, key)


def test_swapped_ciphertexts_are_caught_even_with_fixed_checksums(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)  # both values have 20 bytes, so their records have the same length
    data = vault_path.read_bytes()
    a = ciphertext_span(data, "kraken.api_key")
    b = ciphertext_span(data, "kraken.api_secret")
    assert a[1] - a[0] == b[1] - b[0]
    swapped = bytearray(data)
    swapped[a[0] : a[1]], swapped[b[0] : b[1]] = data[b[0] : b[1]], data[a[0] : a[1]]
    vault_path.write_bytes(bytes(swapped))
    with pytest.raises(VaultTampered, match="checksum"):
        Vault.open(vault_path, key)  # a naive swap trips the file checksum first
    vault_path.write_bytes(reframe(bytes(swapped)))
    with pytest.raises(VaultTampered, match="moved from another name") as err:
        Vault.open(vault_path, key)
    assert err.value.entry == "kraken.api_key"
    assert_no_values(err.value)


def test_altered_ciphertext_names_the_entry(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)
    data = bytearray(vault_path.read_bytes())
    _start, end = ciphertext_span(bytes(data), "kraken.api_secret")
    data[end - 20] ^= 0xFF
    vault_path.write_bytes(reframe(bytes(data)))
    with pytest.raises(VaultTampered) as err:
        Vault.open(vault_path, key)
    assert err.value.entry == "kraken.api_secret"


def test_removed_entry_is_caught_by_the_seal(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)
    data = vault_path.read_bytes()
    (_name, start, end) = entries_of(data)[1]
    count_at = PREAMBLE + KDF_FIELDS + VAULT_ID + KEY_CHECK
    edited = bytearray(data[:start] + data[end:])
    edited[count_at : count_at + 2] = struct.pack(">H", 1)
    vault_path.write_bytes(reframe(bytes(edited)))
    with pytest.raises(VaultTampered, match="list of secrets") as err:
        Vault.open(vault_path, key)
    assert err.value.entry is None


def test_entry_copied_from_another_vault_with_the_same_key_is_caught(tmp_path: Path, key: RawKey) -> None:
    mine, theirs = tmp_path / "mine.bin", tmp_path / "theirs.bin"
    make(mine, key, {"a.token": "mine-value-1"})
    make(theirs, key, {"a.token": "their-value"})
    data, other = mine.read_bytes(), theirs.read_bytes()
    _n, start, end = entries_of(data)[0]
    _n, ostart, oend = entries_of(other)[0]
    mine.write_bytes(reframe(data[:start] + other[ostart:oend] + data[end:]))
    with pytest.raises(VaultTampered, match="list of secrets"):
        Vault.open(mine, key)


def test_changed_vault_id_is_caught_by_the_seal(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)
    data = bytearray(vault_path.read_bytes())
    data[PREAMBLE + KDF_FIELDS] ^= 0x01
    vault_path.write_bytes(reframe(bytes(data)))
    with pytest.raises(VaultTampered):
        Vault.open(vault_path, key)


@pytest.mark.parametrize("log2_n, r, p", [(40, 8, 1), (20, 16, 1), (14, 255, 1), (14, 8, 200), (3, 8, 1)])
def test_crafted_scrypt_parameters_are_refused_before_any_work(
    vault_path: Path, log2_n: int, r: int, p: int
) -> None:
    make(vault_path, PASS)
    data = bytearray(vault_path.read_bytes())
    data[PREAMBLE + 1 : PREAMBLE + 4] = bytes([log2_n, r, p])
    vault_path.write_bytes(reframe(bytes(data)))
    with pytest.raises(VaultCorrupt, match="key derivation parameters"):
        Vault.open(vault_path, PASS)


def test_unsupported_format_version(vault_path: Path, key: RawKey) -> None:
    make(vault_path, key)
    data = bytearray(vault_path.read_bytes())
    data[8:10] = struct.pack(">H", 2)
    vault_path.write_bytes(reframe(bytes(data)))
    with pytest.raises(VaultCorrupt, match="version 2"):
        Vault.open(vault_path, key)


@pytest.mark.parametrize("content", [b'{"kraken": "x"}', b"\x00" * 200, b"TCTLVLT"[:3] + b"nope"])
def test_a_file_that_is_not_a_vault(vault_path: Path, key: RawKey, content: bytes) -> None:
    vault_path.parent.mkdir()
    vault_path.write_bytes(content)
    vault_path.chmod(0o600)
    with pytest.raises(VaultCorrupt, match="not a tradectl vault"):
        Vault.open(vault_path, key)


def test_missing_vault(tmp_path: Path, key: RawKey) -> None:
    with pytest.raises(VaultNotFound, match="tradectl vault init"):
        Vault.open(tmp_path / "nope.bin", key)


# --- rotation ------------------------------------------------------------------------------------


def test_rotate_to_a_new_passphrase(vault_path: Path) -> None:
    vault = make(vault_path, PASS)
    before = vault_path.read_bytes()
    new = Passphrase("a completely different passphrase")
    vault.rotate(new)
    after = vault_path.read_bytes()
    assert after[PREAMBLE + 4 : PREAMBLE + 20] != before[PREAMBLE + 4 : PREAMBLE + 20]  # new salt
    with pytest.raises(WrongKey):
        Vault.open(vault_path, PASS)
    reopened = Vault.open(vault_path, new)
    assert {name: reopened.get(name) for name in reopened.names()} == SECRETS
    assert stat.S_IMODE(vault_path.stat().st_mode) == 0o600


def test_rotate_between_passphrase_and_raw_key(vault_path: Path, key: RawKey) -> None:
    vault = make(vault_path, PASS)
    vault.rotate(key)
    assert Vault.open(vault_path, key).get("kraken.api_secret") == SECRETS["kraken.api_secret"]
    with pytest.raises(WrongKey):
        Vault.open(vault_path, PASS)
    vault.set("telegram.bot_token", "111111:telegram")  # keeps working under the new key
    vault.rotate(PASS, scrypt=ScryptParams(log2_n=15))
    reopened = Vault.open(vault_path, PASS)
    assert reopened.kdf_description == "scrypt n=2^15 r=8 p=1"
    assert reopened.get("telegram.bot_token") == "111111:telegram"


def test_weak_passphrases_are_refused(vault_path: Path, key: RawKey) -> None:
    with pytest.raises(WeakPassphrase):
        Vault.create(vault_path, Passphrase("short"), scrypt=FAST)
    assert not vault_path.exists()
    vault = make(vault_path, key)
    with pytest.raises(WeakPassphrase):
        vault.rotate(Passphrase("hunter2"))
    assert Vault.open(vault_path, key).names() == sorted(SECRETS)


# --- names, values, credentials ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["kraken.api_secret", "a", "telegram.bot_token", "x1.y2_z3.w"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Kraken.key", "a..b", "a__b", ".a", "a.", "_a", "a-b", "a b", "a/b", "x" * 101, "kraken.api_secret_file"],
)
def test_invalid_names(vault_path: Path, key: RawKey, name: str) -> None:
    vault = make(vault_path, key)
    with pytest.raises(InvalidSecretName):
        vault.set(name, "some value")


@pytest.mark.parametrize("value", ["", "x" * (64 * 1024 + 1)])
def test_empty_or_oversized_values_are_refused(vault_path: Path, key: RawKey, value: str) -> None:
    vault = make(vault_path, key)
    with pytest.raises(InvalidSecretValue):
        vault.set("kraken.api_secret", value)
    assert Vault.open(vault_path, key).get("kraken.api_secret") == SECRETS["kraken.api_secret"]


def test_raw_key_text_forms() -> None:
    key = RawKey.generate()
    b64 = key.encode()
    for text in (b64, b64.rstrip("="), f"  {b64}\n", key.key.hex(), key.key.hex().upper(),
                 b64.replace("+", "-").replace("/", "_")):
        assert RawKey.parse(text) == key
    for bad in ("", "not a key", key.key.hex()[:-2], b64[:-6]):
        with pytest.raises(ValueError):
            RawKey.parse(bad)


def test_reprs_never_show_secrets(vault_path: Path, key: RawKey) -> None:
    vault = make(vault_path, key)
    shown = repr(vault) + repr(key) + repr(PASS)
    assert all(value not in shown for value in SECRETS.values())
    assert key.encode() not in shown and PASS.value not in shown


def test_scrypt_parameter_bounds() -> None:
    assert ScryptParams().n == 2**17
    for bad in ({"log2_n": 13}, {"log2_n": 21}, {"r": 0}, {"p": 5}, {"log2_n": 20, "r": 9}):
        with pytest.raises(ValueError):
            ScryptParams(**bad)
