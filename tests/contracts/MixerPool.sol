// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title MixerPool — a mixer-like pool for tests (fixed denomination, no zero-knowledge proofs).
/// @notice withdraw() is callable by anyone once per nullifier: strictly a test fixture.
contract MixerPool {
    uint256 public immutable denomination;
    mapping(bytes32 => bool) public commitments;
    mapping(bytes32 => bool) public nullifierSpent;

    event Deposit(bytes32 indexed commitment, uint32 leafIndex, uint256 timestamp);
    event Withdrawal(address to, bytes32 nullifierHash, address indexed relayer, uint256 fee);

    uint32 public nextIndex;

    constructor(uint256 denomination_) {
        require(denomination_ > 0, "denomination");
        denomination = denomination_;
    }

    function deposit(bytes32 commitment) external payable {
        require(msg.value == denomination, "wrong denomination");
        require(!commitments[commitment], "commitment exists");
        commitments[commitment] = true;
        emit Deposit(commitment, nextIndex, block.timestamp);
        nextIndex += 1;
    }

    function withdraw(address payable recipient, bytes32 nullifier) external {
        require(!nullifierSpent[nullifier], "nullifier spent");
        nullifierSpent[nullifier] = true;
        (bool ok, ) = recipient.call{value: denomination}("");
        require(ok, "send failed");
        emit Withdrawal(recipient, nullifier, msg.sender, 0);
    }
}
