# Generated from services/protos/identity.proto by scripts/gen_protos.py; do not edit.
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
    'services/protos/identity.proto'
)
# @@protoc_insertion_point(imports)

_sym_db = _symbol_database.Default()




DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile(b'\n\x1eservices/protos/identity.proto\x12\x11kdemo.identity.v1\"\"\n\rLookupRequest\x12\x11\n\taddresses\x18\x01 \x03(\t\"O\n\x07\x41\x63\x63ount\x12\x0f\n\x07\x61\x64\x64ress\x18\x01 \x01(\t\x12\x11\n\tgithub_id\x18\x02 \x01(\x03\x12\r\n\x05login\x18\x03 \x01(\t\x12\x11\n\tlinked_at\x18\x04 \x01(\t\";\n\x0bLookupReply\x12,\n\x08\x61\x63\x63ounts\x18\x01 \x03(\x0b\x32\x1a.kdemo.identity.v1.Account\"!\n\x11LinkStatusRequest\x12\x0c\n\x04\x63ode\x18\x01 \x01(\t\"\xa3\x01\n\x0fLinkStatusReply\x12\x0c\n\x04\x63ode\x18\x01 \x01(\t\x12+\n\x05state\x18\x02 \x01(\x0e\x32\x1c.kdemo.identity.v1.LinkState\x12\x0e\n\x06reason\x18\x03 \x01(\t\x12\x0f\n\x07\x61\x64\x64ress\x18\x04 \x01(\t\x12\r\n\x05login\x18\x05 \x01(\t\x12\x11\n\tgithub_id\x18\x06 \x01(\x03\x12\x12\n\nexpires_at\x18\x07 \x01(\t*n\n\tLinkState\x12\x1a\n\x16LINK_STATE_UNSPECIFIED\x10\x00\x12\x16\n\x12LINK_STATE_PENDING\x10\x01\x12\x15\n\x11LINK_STATE_LINKED\x10\x02\x12\x16\n\x12LINK_STATE_REFUSED\x10\x03\x32\xae\x01\n\x08Identity\x12J\n\x06Lookup\x12 .kdemo.identity.v1.LookupRequest\x1a\x1e.kdemo.identity.v1.LookupReply\x12V\n\nLinkStatus\x12$.kdemo.identity.v1.LinkStatusRequest\x1a\".kdemo.identity.v1.LinkStatusReplyb\x06proto3')

_globals = globals()
_builder.BuildMessageAndEnumDescriptors(DESCRIPTOR, _globals)
_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, 'services.protos.identity_pb2', _globals)
if not _descriptor._USE_C_DESCRIPTORS:
  DESCRIPTOR._loaded_options = None
  _globals['_LINKSTATE']._serialized_start=432
  _globals['_LINKSTATE']._serialized_end=542
  _globals['_LOOKUPREQUEST']._serialized_start=53
  _globals['_LOOKUPREQUEST']._serialized_end=87
  _globals['_ACCOUNT']._serialized_start=89
  _globals['_ACCOUNT']._serialized_end=168
  _globals['_LOOKUPREPLY']._serialized_start=170
  _globals['_LOOKUPREPLY']._serialized_end=229
  _globals['_LINKSTATUSREQUEST']._serialized_start=231
  _globals['_LINKSTATUSREQUEST']._serialized_end=264
  _globals['_LINKSTATUSREPLY']._serialized_start=267
  _globals['_LINKSTATUSREPLY']._serialized_end=430
  _globals['_IDENTITY']._serialized_start=545
  _globals['_IDENTITY']._serialized_end=719
# @@protoc_insertion_point(module_scope)
