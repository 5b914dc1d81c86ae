"""twohosts — two hosts on one machine, for tests whose ranks cross a network: two
network namespaces joined by a veth pair, each with its own address and host name,
and Open MPI's rsh agent starting the second host's daemon inside its namespace. Both
hosts see the same files unless `private(path)` hides a folder from host b (a tmpfs
over it, as on a node without the shared file system).

    net = TwoHosts(work, mpirun)     # None and a reason from TwoHosts.make(...)
    with net:
        r = net.run([pmlc, "train", ...])      # 2 ranks, one per host, over TCP
        net.slow("10mbit")                     # the link's rate, both ways
        net.cut()                              # the link goes dead under the ranks

After a cut link Open MPI's mpirun waits for its daemon on the other host long after
every rank has ended (its abort message to the daemon is retransmitted by TCP for
minutes); tests read what the ranks said and end it themselves (`close` ends whatever
still runs on either host).
"""
import os
import shutil
import subprocess



class TwoHosts:
    def __init__(self, work, mpirun, tag):
        self.work, self.mpirun = work, mpirun
        self.ns = [tag + "a", tag + "b"]
        self.veth = [tag + "va", tag + "vb"]
        self.ips = ["10.77.0.1", "10.77.0.2"]
        self.agent = os.path.join(work, "agent.sh")
        self.private_flag = os.path.join(work, "private")
        self.made = False

    @staticmethod
    def make(work, mpirun):
        """(TwoHosts, None), or (None, why two hosts cannot be made here)."""
        if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("unshare"):
            return None, "needs root, ip and unshare to make two hosts"
        net = TwoHosts(work, mpirun, f"pml{os.getpid() % 100000}")
        why = net._setup()
        if why:
            net.close()
            return None, why
        return net, None

    def _ip(self, *args):
        p = subprocess.run(["ip", *args], capture_output=True, text=True)
        return p.returncode, p.stderr.strip()

    def _setup(self):
        self.made = True
        steps = [["netns", "add", self.ns[0]], ["netns", "add", self.ns[1]],
                 ["link", "add", self.veth[0], "type", "veth", "peer", "name", self.veth[1]]]
        for k in (0, 1):
            steps += [["link", "set", self.veth[k], "netns", self.ns[k]],
                      ["-n", self.ns[k], "addr", "add", self.ips[k] + "/24", "dev", self.veth[k]],
                      ["-n", self.ns[k], "link", "set", self.veth[k], "up"],
                      ["-n", self.ns[k], "link", "set", "lo", "up"]]
        for s in steps:
            code, err = self._ip(*s)
            if code:
                return f"cannot make two hosts here (ip {' '.join(s)}: {err})"
        with open(self.agent, "w") as f:
            f.write(f"""#!/bin/sh
# Open MPI's rsh agent: "agent HOST COMMAND..." runs COMMAND on HOST, a namespace.
host=$1; shift
case "$host" in {self.ips[0]}) ns={self.ns[0]}; name=hosta;; {self.ips[1]}) ns={self.ns[1]}; name=hostb;; *) exit 1;; esac
mount=""
[ "$ns" = {self.ns[1]} ] && [ -f {self.private_flag} ] && mount="mount -t tmpfs tmpfs $(cat {self.private_flag}) &&"
exec ip netns exec $ns unshare -m -u sh -c "hostname $name && $mount $*"
""")
        os.chmod(self.agent, 0o755)
        return None

    def private(self, path):
        """Host b sees an empty folder of its own at `path` from the next run on."""
        with open(self.private_flag, "w") as f:
            f.write(path)

    def command(self, argv, env_names=("ASAN_OPTIONS",)):
        """The command that runs argv as 2 ranks, rank k on host k, from host a."""
        net = self.ips[0][:-1] + "0/24"
        mpi = [self.mpirun, "--allow-run-as-root", "--host", f"{self.ips[0]}:1,{self.ips[1]}:1", "-np", "2",
               "--mca", "plm_rsh_agent", self.agent, "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", net,
               "--mca", "oob_tcp_if_include", net]
        for name in env_names:
            mpi += ["-x", name]
        return ["ip", "netns", "exec", self.ns[0], "unshare", "-u", "sh", "-c", 'hostname hosta && exec "$@"', "sh",
                *mpi, *argv]

    def run(self, argv, env, timeout=120):
        return subprocess.run(self.command(argv), capture_output=True, text=True, timeout=timeout, env=env)

    def start(self, argv, env):
        return subprocess.Popen(self.command(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def running(self, host, program):
        """The processes on host `host` (0 or 1) running `program` (its file name)."""
        p = subprocess.run(["ip", "netns", "pids", self.ns[host]], capture_output=True, text=True)
        found = []
        for pid in p.stdout.split():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv0 = f.read().split(b"\0")[0]
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                if os.path.basename(argv0) == program.encode() and state != "Z":
                    found.append(int(pid))
            except OSError:
                pass
        return found

    def slow(self, rate):
        """Both ends of the link send at `rate` (tc's units, e.g. "10mbit"); None: why not."""
        for k in (0, 1):
            code, err = self._ip("netns", "exec", self.ns[k], "tc", "qdisc", "replace", "dev", self.veth[k], "root",
                                 "tbf", "rate", rate, "burst", "16kb", "latency", "100ms")
            if code:
                return f"cannot limit the link (tc tbf: {err})"
        return None

    def cut(self):
        """Host b's end of the link goes down: from host a, packets to it vanish."""
        code, err = self._ip("-n", self.ns[1], "link", "set", self.veth[1], "down")
        assert code == 0, f"cannot cut the link: {err}"

    def close(self):
        """Ends what still runs on either host (after a cut, host b's Open MPI daemon
        never hears that the job ended) and removes the hosts."""
        if self.made:
            for ns in self.ns:
                p = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
                for pid in p.stdout.split():
                    try:
                        os.kill(int(pid), 9)
                    except (ValueError, OSError):
                        pass
                self._ip("netns", "del", ns)
            self.made = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
