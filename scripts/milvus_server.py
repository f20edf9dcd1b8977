#!/usr/bin/env python3
"""Start and stop standalone Milvus servers on 127.0.0.1 for zdm's tests,
demo and `local` provisioner, with no Docker.

It uses the `milvus` package from PyPI (the real Milvus standalone build
with embedded etcd, RocksMQ and local storage). The package's own launcher
cannot run two servers at once: its embedded etcd always binds 2379/2380.
Here every port a server opens is moved apart, etcd's included (through
ETCD_CONFIG_PATH), and the server runs detached with a pid file, so it
outlives this script.

Ports of a server with base port B:
  B proxy (the Milvus endpoint)   B+1 proxy internal   B+2 root coord
  B+3 query coord                 B+4 query node        B+5 index coord
  B+6 index node                  B+7 data coord        B+8 data node
  B+9 metrics and /healthz        B+10 etcd client      B+11 etcd peer

usage:
  milvus_server.py start NAME --base-port B --root DIR [--timeout S]
                   [--s3 HOST:PORT --s3-bucket B [--s3-root P] [--s3-keys KEY:SECRET]]
  milvus_server.py stop NAME --root DIR [--remove] [--kill]
  milvus_server.py stop-all --root DIR [--drop-data]
  milvus_server.py status --root DIR
"""
import argparse
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import milvus

PORTS = ["proxy_port", "proxy_internal_port", "root_coord_port", "query_coord_port",
         "query_node_port", "index_coord_port", "index_node_port", "data_coord_port",
         "data_node_port"]
PORT_SPAN = 12


# Seconds a server's session outlives it in etcd (Milvus's default is 30).
SESSION_TTL = 10


def server_dir(root, name):
    return os.path.join(root, "servers", name)


def pid_file(root, name):
    return os.path.join(server_dir(root, name), "milvus.pid")


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def running_pid(root, name):
    try:
        with open(pid_file(root, name), encoding="utf-8") as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def healthy(metrics_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=2) as r:
            return "OK" in r.read().decode()
    except OSError:
        return False


def start(args):
    root, name, base = os.path.abspath(args.root), args.name, args.base_port
    info_path = os.path.join(server_dir(root, name), "server.json")
    if running_pid(root, name):
        with open(info_path, encoding="utf-8") as f:
            info = json.load(f)
        if healthy(info["metrics_port"]):
            print(info["endpoint"])
            return 0
        stop_server(root, name)
    busy = [p for p in range(base, base + PORT_SPAN) if not port_free(p)]
    if busy:
        print(f"milvus {name}: ports {busy} on 127.0.0.1 are in use; choose another --base-port", file=sys.stderr)
        return 1
    # The binaries are unpacked once and shared by every server; a lock
    # keeps two servers starting together from writing them at once.
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".unpack.lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        milvus._initialize_data_files(root)
    data = server_dir(root, name)
    os.makedirs(data, exist_ok=True)
    cfg = milvus.MilvusServerConfig()
    cfg.update(data_dir=data)
    for i, key in enumerate(PORTS):
        cfg.set(key, base + i)
    etcd_client, etcd_peer, metrics = base + 10, base + 11, base + 9
    cfg.set("etcd_port", etcd_client)
    # At info, Milvus logs several lines per insert message, to its rotated
    # file under logs/ and again to stdout: gigabytes a test run, and CPU
    # taken from the servers the benchmarks measure. Warnings and errors
    # still go to the rotated file.
    cfg.set("log.level", "warn")
    # A server killed with SIGKILL leaves its session in etcd until the
    # session's lease ends, counted again from the restart (etcd renews
    # leases when it starts): until then the new server sees its dead self
    # as a node that serves, and when it ends the collections that node
    # held read "not loaded" for a while. A short lease lets the tests that
    # kill a server have it whole again sooner.
    cfg.set("common.session.ttl", SESSION_TTL)
    cfg.set("log.stdout", "false")
    # Milvus keeps the files of dropped collections and compacted segments
    # for 3 hours, and its write-ahead log for 3 days (8 GB a channel): an
    # hour of benchmarks, which write tens of gigabytes, left 70 GB on this
    # disk. The bed keeps them minutes, long enough for a segment copy to
    # read a segment compacted away since it was listed.
    for k, v in {"dataCoord.gc.interval": 120, "dataCoord.gc.dropTolerance": 600,
                 "rocksmq.retentionTimeInMinutes": 30, "rocksmq.retentionSizeInMB": 2048,
                 "rocksmq.compactionInterval": 600}.items():
        cfg.set(k, v)
    if args.s3:
        # Milvus's minio settings reach any S3-compatible server.
        host, port = args.s3.rsplit(":", 1)
        key, secret = args.s3_keys.split(":", 1)
        for k, v in {"common.storageType": "minio", "minio.address": host, "minio.port": int(port),
                     "minio.bucketName": args.s3_bucket, "minio.rootPath": args.s3_root,
                     "minio.accessKeyID": key, "minio.secretAccessKey": secret, "minio.useSSL": "false"}.items():
            cfg.set(k, v)
    if args.tls_dir:
        # Milvus's proxy speaks TLS with server.pem and server.key of the
        # directory; in mode 2 it asks for a client certificate signed by
        # ca.pem.
        d = os.path.abspath(args.tls_dir)
        for k, v in {"common.security.tlsMode": args.tls_mode, "tls.serverPemPath": os.path.join(d, "server.pem"),
                     "tls.serverKeyPath": os.path.join(d, "server.key"), "tls.caPemPath": os.path.join(d, "ca.pem")}.items():
            cfg.set(k, v)
    if args.auth:
        # Users must sign in (root:Milvus at first), and what each may do
        # is what its roles are granted.
        cfg.set("common.security.authorizationEnabled", "true")
    cfg.resolve_storage()
    cfg.write_config()
    etcd_conf = os.path.join(data, "configs", "embedEtcd.yaml")
    with open(etcd_conf, "w", encoding="utf-8") as f:
        f.write(f"""name: {name}
data-dir: {os.path.join(data, 'data', 'etcd.data')}
listen-client-urls: http://127.0.0.1:{etcd_client}
advertise-client-urls: http://127.0.0.1:{etcd_client}
listen-peer-urls: http://127.0.0.1:{etcd_peer}
initial-advertise-peer-urls: http://127.0.0.1:{etcd_peer}
initial-cluster: {name}=http://127.0.0.1:{etcd_peer}
initial-cluster-state: new
quota-backend-bytes: 4294967296
auto-compaction-mode: revision
auto-compaction-retention: "1000"
""")
    bin_dir = os.path.join(root, "bin")
    env = dict(os.environ)
    env.update({
        "DEPLOY_MODE": "STANDALONE",
        "METRICS_PORT": str(metrics),
        "MILVUS_RUN_DIR": os.path.join(data, "run"),
        "MILVUSCONF": os.path.join(data, "configs"),
        "ETCD_CONFIG_PATH": etcd_conf,
        "LD_LIBRARY_PATH": bin_dir + ":" + env.get("LD_LIBRARY_PATH", ""),
    })
    logs = os.path.join(data, "logs")
    os.makedirs(logs, exist_ok=True)
    with open(os.path.join(logs, "milvus-stdout.log"), "ab") as out, \
            open(os.path.join(logs, "milvus-stderr.log"), "ab") as err:
        proc = subprocess.Popen([os.path.join(bin_dir, "milvus"), "run", "standalone"], cwd=data, env=env,
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
    with open(pid_file(root, name), "w", encoding="utf-8") as f:
        f.write(str(proc.pid))
    info = {"name": name, "endpoint": f"127.0.0.1:{base}", "metrics_port": metrics, "base_port": base,
            "pid": proc.pid, "data": data, "version": milvus.__version__}
    with open(info_path, "w", encoding="utf-8") as f:
        json.dump(info, f)
    began = time.time()
    while time.time() - began < args.timeout:
        if proc.poll() is not None:
            print(f"milvus {name} exited with {proc.returncode} during start; see {logs}", file=sys.stderr)
            return 1
        if healthy(metrics):
            print(info["endpoint"])
            return 0
        time.sleep(0.5)
    stop_server(root, name)
    print(f"milvus {name} not healthy after {args.timeout}s; see {logs}", file=sys.stderr)
    return 1


def stop_server(root, name, remove=False, kill=False):
    pid = running_pid(root, name)
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
        except OSError:
            pass
        deadline = time.time() + 15
        while time.time() < deadline and running_pid(root, name):
            time.sleep(0.2)
        if running_pid(root, name):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            time.sleep(0.5)
    try:
        os.remove(pid_file(root, name))
    except OSError:
        pass
    if remove:
        subprocess.run(["rm", "-rf", server_dir(root, name)], check=False)


def drop_data(root, name):
    """Deletes a stopped server's data, keeping its logs and settings."""
    subprocess.run(["rm", "-rf", os.path.join(server_dir(root, name), "data")], check=False)


def servers(root):
    d = os.path.join(os.path.abspath(root), "servers")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("name")
    s.add_argument("--base-port", type=int, required=True)
    s.add_argument("--root", required=True)
    s.add_argument("--timeout", type=float, default=300)
    s.add_argument("--s3", help="keep binlogs in this S3-compatible server (host:port) instead of local storage")
    s.add_argument("--s3-bucket", default="milvus")
    s.add_argument("--s3-root", default="files")
    s.add_argument("--s3-keys", default="zdm:zdm-secret", help="access key and secret key, KEY:SECRET")
    s.add_argument("--tls-dir", help="speak TLS with server.pem, server.key (and ca.pem) of this directory")
    s.add_argument("--tls-mode", type=int, choices=(1, 2), default=1, help="1: one-way TLS, 2: mutual TLS")
    s.add_argument("--auth", action="store_true", help="require users to sign in, and enforce their roles' grants")
    t = sub.add_parser("stop")
    t.add_argument("name")
    t.add_argument("--root", required=True)
    t.add_argument("--remove", action="store_true", help="also delete the server's data")
    t.add_argument("--kill", action="store_true", help="SIGKILL at once, as a crash would (tests)")
    a = sub.add_parser("stop-all")
    a.add_argument("--root", required=True)
    a.add_argument("--drop-data", action="store_true",
                   help="also delete the servers' data (their logs are kept)")
    st = sub.add_parser("status")
    st.add_argument("--root", required=True)
    args = p.parse_args()
    if args.cmd == "start":
        return start(args)
    if args.cmd == "stop":
        stop_server(os.path.abspath(args.root), args.name, args.remove, args.kill)
        return 0
    if args.cmd == "stop-all":
        for name in servers(args.root):
            stop_server(os.path.abspath(args.root), name)
            if args.drop_data:
                drop_data(os.path.abspath(args.root), name)
        return 0
    for name in servers(args.root):
        pid = running_pid(os.path.abspath(args.root), name)
        print(f"{name}\t{'running pid ' + str(pid) if pid else 'stopped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
