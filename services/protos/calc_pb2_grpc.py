# Generated from services/protos/calc.proto by scripts/gen_protos.py; do not edit.
"""Client and server classes corresponding to protobuf-defined services."""
import grpc
import warnings

from services.protos import calc_pb2 as services_dot_protos_dot_calc__pb2

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
        + ' but the generated code in services/protos/calc_pb2_grpc.py depends on'
        + f' grpcio>={GRPC_GENERATED_VERSION}.'
        + f' Please upgrade your grpc module to grpcio>={GRPC_GENERATED_VERSION}'
        + f' or downgrade your generated code using grpcio-tools<={GRPC_VERSION}.'
    )


class CalcStub:
    """Missing associated documentation comment in .proto file."""

    def __init__(self, channel):
        """Constructor.

        Args:
            channel: A grpc.Channel.
        """
        self.Quote = channel.unary_unary(
                '/kdemo.calc.v1.Calc/Quote',
                request_serializer=services_dot_protos_dot_calc__pb2.QuoteRequest.SerializeToString,
                response_deserializer=services_dot_protos_dot_calc__pb2.QuoteReply.FromString,
                _registered_method=True)
        self.Summarize = channel.unary_unary(
                '/kdemo.calc.v1.Calc/Summarize',
                request_serializer=services_dot_protos_dot_calc__pb2.SummarizeRequest.SerializeToString,
                response_deserializer=services_dot_protos_dot_calc__pb2.SummarizeReply.FromString,
                _registered_method=True)


class CalcServicer:
    """Missing associated documentation comment in .proto file."""

    def Quote(self, request, context):
        """Normalise one amount: base units, fee and payout. Unknown denomination or a
        malformed amount is INVALID_ARGUMENT, the message naming the field.
        """
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details('Method not implemented!')
        raise NotImplementedError('Method not implemented!')

    def Summarize(self, request, context):
        """Totals per denomination, sorted by denomination. At most 1000 items per
        call (INVALID_ARGUMENT beyond, naming `items`): sum longer lists in batches.
        """
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details('Method not implemented!')
        raise NotImplementedError('Method not implemented!')


def add_CalcServicer_to_server(servicer, server):
    rpc_method_handlers = {
            'Quote': grpc.unary_unary_rpc_method_handler(
                    servicer.Quote,
                    request_deserializer=services_dot_protos_dot_calc__pb2.QuoteRequest.FromString,
                    response_serializer=services_dot_protos_dot_calc__pb2.QuoteReply.SerializeToString,
            ),
            'Summarize': grpc.unary_unary_rpc_method_handler(
                    servicer.Summarize,
                    request_deserializer=services_dot_protos_dot_calc__pb2.SummarizeRequest.FromString,
                    response_serializer=services_dot_protos_dot_calc__pb2.SummarizeReply.SerializeToString,
            ),
    }
    generic_handler = grpc.method_handlers_generic_handler(
            'kdemo.calc.v1.Calc', rpc_method_handlers)
    server.add_generic_rpc_handlers((generic_handler,))
    server.add_registered_method_handlers('kdemo.calc.v1.Calc', rpc_method_handlers)


 # This class is part of an EXPERIMENTAL API.
class Calc:
    """Missing associated documentation comment in .proto file."""

    @staticmethod
    def Quote(request,
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
            '/kdemo.calc.v1.Calc/Quote',
            services_dot_protos_dot_calc__pb2.QuoteRequest.SerializeToString,
            services_dot_protos_dot_calc__pb2.QuoteReply.FromString,
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
    def Summarize(request,
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
            '/kdemo.calc.v1.Calc/Summarize',
            services_dot_protos_dot_calc__pb2.SummarizeRequest.SerializeToString,
            services_dot_protos_dot_calc__pb2.SummarizeReply.FromString,
            options,
            channel_credentials,
            insecure,
            call_credentials,
            compression,
            wait_for_ready,
            timeout,
            metadata,
            _registered_method=True)
