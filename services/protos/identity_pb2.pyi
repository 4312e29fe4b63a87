from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINK_STATE_UNSPECIFIED: _ClassVar[LinkState]
    LINK_STATE_PENDING: _ClassVar[LinkState]
    LINK_STATE_LINKED: _ClassVar[LinkState]
    LINK_STATE_REFUSED: _ClassVar[LinkState]
LINK_STATE_UNSPECIFIED: LinkState
LINK_STATE_PENDING: LinkState
LINK_STATE_LINKED: LinkState
LINK_STATE_REFUSED: LinkState

class LookupRequest(_message.Message):
    __slots__ = ("addresses",)
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("address", "github_id", "login", "linked_at")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    GITHUB_ID_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    LINKED_AT_FIELD_NUMBER: _ClassVar[int]
    address: str
    github_id: int
    login: str
    linked_at: str
    def __init__(self, address: _Optional[str] = ..., github_id: _Optional[int] = ..., login: _Optional[str] = ..., linked_at: _Optional[str] = ...) -> None: ...

class LookupReply(_message.Message):
    __slots__ = ("accounts",)
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedCompositeFieldContainer[Account]
    def __init__(self, accounts: _Optional[_Iterable[_Union[Account, _Mapping]]] = ...) -> None: ...

class LinkStatusRequest(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class LinkStatusReply(_message.Message):
    __slots__ = ("code", "state", "reason", "address", "login", "github_id", "expires_at")
    CODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    GITHUB_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    code: str
    state: LinkState
    reason: str
    address: str
    login: str
    github_id: int
    expires_at: str
    def __init__(self, code: _Optional[str] = ..., state: _Optional[_Union[LinkState, str]] = ..., reason: _Optional[str] = ..., address: _Optional[str] = ..., login: _Optional[str] = ..., github_id: _Optional[int] = ..., expires_at: _Optional[str] = ...) -> None: ...
