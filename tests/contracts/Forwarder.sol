// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IERC20Like {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title Forwarder — relays value so tests get internal (contract-to-account) transfers.
contract Forwarder {
    event Forwarded(address indexed from, address indexed to, uint256 value);

    /// @notice Sends all of msg.value on to `to` with a CALL (one internal transfer).
    function forward(address payable to) external payable {
        _send(to, msg.value);
        emit Forwarded(msg.sender, to, msg.value);
    }

    /// @notice Sends half of msg.value to `a` and the rest to `b` (two internal transfers).
    function split(address payable a, address payable b) external payable {
        uint256 half = msg.value / 2;
        _send(a, half);
        _send(b, msg.value - half);
        emit Forwarded(msg.sender, a, half);
        emit Forwarded(msg.sender, b, msg.value - half);
    }

    /// @notice Forwards value like forward(), then reverts: the transaction moves no value at all.
    function forwardAndRevert(address payable to) external payable {
        _send(to, msg.value);
        revert("forwardAndRevert: always reverts");
    }

    /// @notice Moves `amount` of `token` from the caller to `to` (caller must have approved this contract).
    function forwardToken(address token, address to, uint256 amount) external {
        require(IERC20Like(token).transferFrom(msg.sender, to, amount), "transferFrom failed");
    }

    function _send(address payable to, uint256 value) internal {
        (bool ok, ) = to.call{value: value}("");
        require(ok, "send failed");
    }
}
