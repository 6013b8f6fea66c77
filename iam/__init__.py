"""Identity and access: access keys and the master key that encrypts their secrets
(``keys``, ``keystore``, ``secrets``), principals (``directory``), the policy language
(``policy``, ``matching``) and ``decide()`` (``decide``).
"""

from iam.keys import (
    KEY_ID_RE,
    SECRET_RE,
    format_key_pair,
    generate_key_pair,
    parse_bearer,
    parse_key_pair,
)
from iam.keystore import (
    ACTIVE,
    INACTIVE,
    KEYSTORE_DDL,
    ROOT_PRINCIPAL,
    AccessKey,
    AuthenticatedKey,
    KeyRing,
    ensure_schema,
    get_key,
    list_keys,
    put_key,
    set_status,
)
from iam.secrets import MasterKeyError, SecretBox, generate_master_key, load_master_key

__all__ = [
    "ACTIVE",
    "INACTIVE",
    "KEYSTORE_DDL",
    "KEY_ID_RE",
    "ROOT_PRINCIPAL",
    "SECRET_RE",
    "AccessKey",
    "AuthenticatedKey",
    "KeyRing",
    "MasterKeyError",
    "SecretBox",
    "ensure_schema",
    "format_key_pair",
    "generate_key_pair",
    "generate_master_key",
    "get_key",
    "list_keys",
    "load_master_key",
    "parse_bearer",
    "parse_key_pair",
    "put_key",
    "set_status",
]
