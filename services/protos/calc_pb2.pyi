from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QuoteRequest(_message.Message):
    __slots__ = ("denomination", "amount")
    DENOMINATION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    denomination: str
    amount: str
    def __init__(self, denomination: _Optional[str] = ..., amount: _Optional[str] = ...) -> None: ...

class QuoteReply(_message.Message):
    __slots__ = ("denomination", "amount", "decimals", "base_units", "fee_bps", "fee", "payout")
    DENOMINATION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DECIMALS_FIELD_NUMBER: _ClassVar[int]
    BASE_UNITS_FIELD_NUMBER: _ClassVar[int]
    FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    PAYOUT_FIELD_NUMBER: _ClassVar[int]
    denomination: str
    amount: str
    decimals: int
    base_units: str
    fee_bps: int
    fee: str
    payout: str
    def __init__(self, denomination: _Optional[str] = ..., amount: _Optional[str] = ..., decimals: _Optional[int] = ..., base_units: _Optional[str] = ..., fee_bps: _Optional[int] = ..., fee: _Optional[str] = ..., payout: _Optional[str] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("denomination", "amount")
    DENOMINATION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    denomination: str
    amount: str
    def __init__(self, denomination: _Optional[str] = ..., amount: _Optional[str] = ...) -> None: ...

class SummarizeRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ...) -> None: ...

class Total(_message.Message):
    __slots__ = ("denomination", "decimals", "count", "amount", "base_units", "fee", "payout")
    DENOMINATION_FIELD_NUMBER: _ClassVar[int]
    DECIMALS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BASE_UNITS_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    PAYOUT_FIELD_NUMBER: _ClassVar[int]
    denomination: str
    decimals: int
    count: int
    amount: str
    base_units: str
    fee: str
    payout: str
    def __init__(self, denomination: _Optional[str] = ..., decimals: _Optional[int] = ..., count: _Optional[int] = ..., amount: _Optional[str] = ..., base_units: _Optional[str] = ..., fee: _Optional[str] = ..., payout: _Optional[str] = ...) -> None: ...

class SummarizeReply(_message.Message):
    __slots__ = ("totals", "fee_bps")
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    totals: _containers.RepeatedCompositeFieldContainer[Total]
    fee_bps: int
    def __init__(self, totals: _Optional[_Iterable[_Union[Total, _Mapping]]] = ..., fee_bps: _Optional[int] = ...) -> None: ...
