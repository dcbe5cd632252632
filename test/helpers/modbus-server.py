"""A Modbus server for sluice's tests, built on pymodbus (not sluice's code).

Reads a JSON spec from argv[1]: {"units": {"1": [{"table": "holding_registers", "address": 0,
"type": "float32", "order": "CDAB", "value": 230.5}, ...]}, "size": 200} and serves it, over
Modbus TCP (--tcp PORT on 127.0.0.1) or RTU (--rtu DEVICE --baud N). Values are encoded here with
Python's struct module, independently of sluice's decoder. Units listed in "silent" never
answer (their responses are dropped before sending), so a test can have a device that times out;
pymodbus 3.16 answers a missing unit with exception 4 even with ignore_missing_devices. The register tables hold
`size` entries from address 0: reading past them is answered with exception 2 (illegal data
address). Prints "ready" on stdout once serving.
"""

import asyncio
import json
import logging
import struct
import sys

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q", "uint64": ">Q", "float32": ">f", "float64": ">d"}


def registers(entry):
    """The 16-bit registers holding entry's value in its byte/word order."""
    t = entry["type"]
    if t == "string":
        raw = entry["value"].encode("latin-1").ljust(entry["count"] * 2, b"\0")
    elif t == "bool":
        raw = struct.pack(">H", 1 if entry["value"] else 0)
    else:
        # 64-bit integers beyond 2^53 come as strings (JSON numbers would round them).
        v = int(entry["value"]) if isinstance(entry["value"], str) else entry["value"]
        raw = struct.pack(FORMATS[t], v)
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    order = entry.get("order", "ABCD")
    if order in ("CDAB", "DCBA"):
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [struct.unpack(">H", w)[0] for w in words]


def build(spec):
    size = spec.get("size", 200)
    devices = {}
    for unit, entries in spec["units"].items():
        tables = {"coils": [False] * size, "discrete_inputs": [False] * size, "holding_registers": [0] * size, "input_registers": [0] * size}
        for e in entries:
            table = tables[e["table"]]
            if e["table"] in ("coils", "discrete_inputs"):
                table[e["address"]] = bool(e["value"])
            else:
                for i, w in enumerate(registers(e)):
                    table[e["address"] + i] = w
        # pymodbus's data blocks are addressed from 1 for protocol address 0 (its "zero_mode" off).
        devices[int(unit)] = ModbusDeviceContext(
            co=ModbusSequentialDataBlock(1, tables["coils"]),
            di=ModbusSequentialDataBlock(1, tables["discrete_inputs"]),
            hr=ModbusSequentialDataBlock(1, tables["holding_registers"]),
            ir=ModbusSequentialDataBlock(1, tables["input_registers"]),
        )
    return ModbusServerContext(devices=devices, single=False)


async def main():
    logging.basicConfig(level=logging.ERROR)
    spec = json.load(open(sys.argv[1]))
    context = build(spec)
    args = sys.argv[2:]
    silent = set(spec.get("silent", []))
    unit_at = 6 if args[0] == "--tcp" else 0

    def drop_silent(sending, packet):
        if sending and len(packet) > unit_at and packet[unit_at] in silent:
            return b""
        return packet

    if args[0] == "--tcp":
        server = ModbusTcpServer(context, address=("127.0.0.1", int(args[1])), ignore_missing_devices=True, trace_packet=drop_silent)
    else:
        baud = int(args[3]) if len(args) > 3 else 9600
        server = ModbusSerialServer(context, port=args[1], baudrate=baud, parity="N", stopbits=1, bytesize=8, ignore_missing_devices=True, trace_packet=drop_silent)
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await task


asyncio.run(main())
