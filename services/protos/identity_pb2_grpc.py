# Generated from services/protos/identity.proto by scripts/gen_protos.py; do not edit.
"""Client and server classes corresponding to protobuf-defined services."""
import grpc
import warnings

from services.protos import identity_pb2 as services_dot_protos_dot_identity__pb2

GRPC_GENERATED_VERSION = '1.85.1'
GRPC_VERSION = grpc.__version__
_version_not_supported = False

try:
    from grpc._utilities import first_version_is_lower
    _version_not_supported = first_version_is_lower(GRPC_VERSION, GRPC_GENERATED_VERSION)
except ImportError:
    _version_not_supported = True

if _version_not_supported:
    raise RuntimeError(
        f'The grpc package installed is at version {GRPC_VERSION},'
        + ' but the generated code in services/protos/identity_pb2_grpc.py depends on'
        + f' grpcio>={GRPC_GENERATED_VERSION}.'
        + f' Please upgrade your grpc module to grpcio>={GRPC_GENERATED_VERSION}'
        + f' or downgrade your generated code using grpcio-tools<={GRPC_VERSION}.'
    )


class IdentityStub:
    """Missing associated documentation comment in .proto file."""

    def __init__(self, channel):
        """Constructor.

        Args:
            channel: A grpc.Channel.
        """
        self.Lookup = channel.unary_unary(
                '/kdemo.identity.v1.Identity/Lookup',
                request_serializer=services_dot_protos_dot_identity__pb2.LookupRequest.SerializeToString,
                response_deserializer=services_dot_protos_dot_identity__pb2.LookupReply.FromString,
                _registered_method=True)
        self.LinkStatus = channel.unary_unary(
                '/kdemo.identity.v1.Identity/LinkStatus',
                request_serializer=services_dot_protos_dot_identity__pb2.LinkStatusRequest.SerializeToString,
                response_deserializer=services_dot_protos_dot_identity__pb2.LinkStatusReply.FromString,
                _registered_method=True)


class IdentityServicer:
    """Missing associated documentation comment in .proto file."""

    def Lookup(self, request, context):
        """The linked GitHub accounts of the given addresses; unknown addresses are
        simply absent from the reply. At most 1000 addresses per call
        (INVALID_ARGUMENT beyond, naming `addresses`): look longer lists up in batches.
        """
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details('Method not implemented!')
        raise NotImplementedError('Method not implemented!')

    def LinkStatus(self, request, context):
        """The state of a link code; NOT_FOUND when identity has never seen the code.
        """
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details('Method not implemented!')
        raise NotImplementedError('Method not implemented!')


def add_IdentityServicer_to_server(servicer, server):
    rpc_method_handlers = {
            'Lookup': grpc.unary_unary_rpc_method_handler(
                    servicer.Lookup,
                    request_deserializer=services_dot_protos_dot_identity__pb2.LookupRequest.FromString,
                    response_serializer=services_dot_protos_dot_identity__pb2.LookupReply.SerializeToString,
            ),
            'LinkStatus': grpc.unary_unary_rpc_method_handler(
                    servicer.LinkStatus,
                    request_deserializer=services_dot_protos_dot_identity__pb2.LinkStatusRequest.FromString,
                    response_serializer=services_dot_protos_dot_identity__pb2.LinkStatusReply.SerializeToString,
            ),
    }
    generic_handler = grpc.method_handlers_generic_handler(
            'kdemo.identity.v1.Identity', rpc_method_handlers)
    server.add_generic_rpc_handlers((generic_handler,))
    server.add_registered_method_handlers('kdemo.identity.v1.Identity', rpc_method_handlers)


 # This class is part of an EXPERIMENTAL API.
class Identity:
    """Missing associated documentation comment in .proto file."""

    @staticmethod
    def Lookup(request,
            target,
            options=(),
            channel_credentials=None,
            call_credentials=None,
            insecure=False,
            compression=None,
            wait_for_ready=None,
            timeout=None,
            metadata=None):
        return grpc.experimental.unary_unary(
            request,
            target,
            '/kdemo.identity.v1.Identity/Lookup',
            services_dot_protos_dot_identity__pb2.LookupRequest.SerializeToString,
            services_dot_protos_dot_identity__pb2.LookupReply.FromString,
            options,
            channel_credentials,
            insecure,
            call_credentials,
            compression,
            wait_for_ready,
            timeout,
            metadata,
            _registered_method=True)

    @staticmethod
    def LinkStatus(request,
            target,
            options=(),
            channel_credentials=None,
            call_credentials=None,
            insecure=False,
            compression=None,
            wait_for_ready=None,
            timeout=None,
            metadata=None):
        return grpc.experimental.unary_unary(
            request,
            target,
            '/kdemo.identity.v1.Identity/LinkStatus',
            services_dot_protos_dot_identity__pb2.LinkStatusRequest.SerializeToString,
            services_dot_protos_dot_identity__pb2.LinkStatusReply.FromString,
            options,
            channel_credentials,
            insecure,
            call_credentials,
            compression,
            wait_for_ready,
            timeout,
            metadata,
            _registered_method=True)
