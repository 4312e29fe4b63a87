# Generated from services/protos/calc.proto by scripts/gen_protos.py; do not edit.
"""Generated protocol buffer code."""
from google.protobuf import descriptor as _descriptor
from google.protobuf import descriptor_pool as _descriptor_pool
from google.protobuf import runtime_version as _runtime_version
from google.protobuf import symbol_database as _symbol_database
from google.protobuf.internal import builder as _builder
_runtime_version.ValidateProtobufRuntimeVersion(
    _runtime_version.Domain.PUBLIC,
    7,
    35,
    1,
    '',
    'services/protos/calc.proto'
)
# @@protoc_insertion_point(imports)

_sym_db = _symbol_database.Default()




DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile(b'\n\x1aservices/protos/calc.proto\x12\rkdemo.calc.v1\"4\n\x0cQuoteRequest\x12\x14\n\x0c\x64\x65nomination\x18\x01 \x01(\t\x12\x0e\n\x06\x61mount\x18\x02 \x01(\t\"\x86\x01\n\nQuoteReply\x12\x14\n\x0c\x64\x65nomination\x18\x01 \x01(\t\x12\x0e\n\x06\x61mount\x18\x02 \x01(\t\x12\x10\n\x08\x64\x65\x63imals\x18\x03 \x01(\r\x12\x12\n\nbase_units\x18\x04 \x01(\t\x12\x0f\n\x07\x66\x65\x65_bps\x18\x05 \x01(\r\x12\x0b\n\x03\x66\x65\x65\x18\x06 \x01(\t\x12\x0e\n\x06payout\x18\x07 \x01(\t\",\n\x04Item\x12\x14\n\x0c\x64\x65nomination\x18\x01 \x01(\t\x12\x0e\n\x06\x61mount\x18\x02 \x01(\t\"6\n\x10SummarizeRequest\x12\"\n\x05items\x18\x01 \x03(\x0b\x32\x13.kdemo.calc.v1.Item\"\x7f\n\x05Total\x12\x14\n\x0c\x64\x65nomination\x18\x01 \x01(\t\x12\x10\n\x08\x64\x65\x63imals\x18\x02 \x01(\r\x12\r\n\x05\x63ount\x18\x03 \x01(\x04\x12\x0e\n\x06\x61mount\x18\x04 \x01(\t\x12\x12\n\nbase_units\x18\x05 \x01(\t\x12\x0b\n\x03\x66\x65\x65\x18\x06 \x01(\t\x12\x0e\n\x06payout\x18\x07 \x01(\t\"G\n\x0eSummarizeReply\x12$\n\x06totals\x18\x01 \x03(\x0b\x32\x14.kdemo.calc.v1.Total\x12\x0f\n\x07\x66\x65\x65_bps\x18\x02 \x01(\r2\x94\x01\n\x04\x43\x61lc\x12?\n\x05Quote\x12\x1b.kdemo.calc.v1.QuoteRequest\x1a\x19.kdemo.calc.v1.QuoteReply\x12K\n\tSummarize\x12\x1f.kdemo.calc.v1.SummarizeRequest\x1a\x1d.kdemo.calc.v1.SummarizeReplyb\x06proto3')

_globals = globals()
_builder.BuildMessageAndEnumDescriptors(DESCRIPTOR, _globals)
_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, 'services.protos.calc_pb2', _globals)
if not _descriptor._USE_C_DESCRIPTORS:
  DESCRIPTOR._loaded_options = None
  _globals['_QUOTEREQUEST']._serialized_start=45
  _globals['_QUOTEREQUEST']._serialized_end=97
  _globals['_QUOTEREPLY']._serialized_start=100
  _globals['_QUOTEREPLY']._serialized_end=234
  _globals['_ITEM']._serialized_start=236
  _globals['_ITEM']._serialized_end=280
  _globals['_SUMMARIZEREQUEST']._serialized_start=282
  _globals['_SUMMARIZEREQUEST']._serialized_end=336
  _globals['_TOTAL']._serialized_start=338
  _globals['_TOTAL']._serialized_end=465
  _globals['_SUMMARIZEREPLY']._serialized_start=467
  _globals['_SUMMARIZEREPLY']._serialized_end=538
  _globals['_CALC']._serialized_start=541
  _globals['_CALC']._serialized_end=689
# @@protoc_insertion_point(module_scope)
