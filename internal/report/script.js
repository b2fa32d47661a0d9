(function(){
  function openTarget(){
    var id=decodeURIComponent(location.hash.slice(1));
    if(!id)return;
    var el=document.getElementById(id);
    for(;el;el=el.parentElement){if(el.tagName==="DETAILS")el.open=true;}
  }
  window.addEventListener("hashchange",openTarget);
  openTarget();
  function all(open){
    var d=document.querySelectorAll("details");
    for(var i=0;i<d.length;i++)d[i].open=open;
  }
  var e=document.getElementById("expand"),c=document.getElementById("collapse");
  if(e)e.addEventListener("click",function(){all(true);});
  if(c)c.addEventListener("click",function(){all(false);});
  document.documentElement.setAttribute("data-ready","1");
})();
