"""A local emulation of a Livepeer network (orchestrators, remote signer, discovery) on loopback.

``async with Devnet(DevnetOptions(orchestrators=2)) as net: print(net.token)`` — or run
``python -m livepeer.devnet`` / ``livepeer devnet``. Fixtures for tests: ``livepeer.devnet.pytest_plugin``.
"""

from livepeer.devnet._network import Devnet, DevnetOptions, OrchestratorHandle
from livepeer.devnet._orchestrator import Faults
from livepeer.devnet._signer import SignerFaults

__version__ = "0.1.0"

__all__ = ["Devnet", "DevnetOptions", "Faults", "OrchestratorHandle", "SignerFaults", "__version__"]
