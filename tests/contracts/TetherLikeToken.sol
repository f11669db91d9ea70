// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title TetherLikeToken — a TRC-20-like token with Tether's blacklist, for tests.
/// @notice Modelled on Tether's USDT (TetherToken / BlackList): the owner freezes an address with
/// addBlackList (event AddedBlackList), lifts the freeze with removeBlackList (RemovedBlackList), and burns a
/// frozen address's balance with destroyBlackFunds (DestroyedBlackFunds). As in Tether's published source, the
/// events' parameters are not indexed (the address is in the log's data). A frozen address cannot send.
contract TetherLikeToken {
    string public name;
    string public symbol;
    uint8 public decimals;
    uint256 public totalSupply;
    address public owner;

    mapping(address => uint256) public balanceOf;
    mapping(address => bool) public isBlackListed;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event AddedBlackList(address _user);
    event RemovedBlackList(address _user);
    event DestroyedBlackFunds(address _blackListedUser, uint256 _balance);

    modifier onlyOwner() {
        require(msg.sender == owner, "not the owner");
        _;
    }

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        owner = msg.sender;
    }

    function issue(address to, uint256 amount) external onlyOwner {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        require(!isBlackListed[msg.sender], "frozen");
        require(balanceOf[msg.sender] >= amount, "balance");
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        emit Transfer(msg.sender, to, amount);
        return true;
    }

    function getBlackListStatus(address maker) external view returns (bool) {
        return isBlackListed[maker];
    }

    function addBlackList(address evilUser) external onlyOwner {
        isBlackListed[evilUser] = true;
        emit AddedBlackList(evilUser);
    }

    function removeBlackList(address clearedUser) external onlyOwner {
        isBlackListed[clearedUser] = false;
        emit RemovedBlackList(clearedUser);
    }

    function destroyBlackFunds(address blackListedUser) external onlyOwner {
        require(isBlackListed[blackListedUser], "not frozen");
        uint256 dirtyFunds = balanceOf[blackListedUser];
        balanceOf[blackListedUser] = 0;
        totalSupply -= dirtyFunds;
        emit DestroyedBlackFunds(blackListedUser, dirtyFunds);
    }
}
